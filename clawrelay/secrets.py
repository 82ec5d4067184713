"""Secret values from `${VAR}` references, and the scrubber that keeps them out of every output.

A secret is resolved only when a transport needs it, so a send that never touches a gateway does
not fail because that gateway's token variable is unset. A `${VAR}` is read from the environment,
else from the secrets file routes.yaml names (`secrets: ./secrets.env`): an OpenClaw agent's `exec`
tool runs clawrelay with the gateway service's environment, where the user's shell exports are
unset. Every value revealed in this process, and every value of the secrets file, is remembered,
and `scrub` removes it from any text before that text reaches a log, the journal, `--json` or an
exception message.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from clawrelay.secrets_file import SecretsFile

TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"  # where OpenClaw itself, and clawrelay by default, reads a gateway token
_REVEALED: set[str] = set()
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a `${VAR}` reference, whole or inside a string
MASK = "***"
ENVIRONMENT = "the environment"


class Found(NamedTuple):
    """A secret's value and where it came from: `the environment`, or `/abs/secrets.env:LINE`."""

    value: str
    origin: str


_file: SecretsFile | None = None  # the secrets file of the routes in use (loader.parse_routes sets it)


def use_file(secrets_file: SecretsFile | None) -> None:
    """Make `secrets_file` where `${VAR}` references not set in the environment are read."""
    global _file
    _file = secrets_file


def current_file() -> SecretsFile | None:
    return _file


def lookup(name: str) -> Found | None:
    """A variable's value and origin: the environment first, then the secrets file; None if unset
    (an empty value is unset)."""
    value = os.environ.get(name)
    if value:
        return Found(value, ENVIRONMENT)
    return _file.get(name) if _file is not None else None


def value_of(name: str) -> str | None:
    """`lookup`'s value, remembered as a secret (OPENCLAW_GATEWAY_TOKEN for a gateway without a
    `token` key)."""
    found = lookup(name)
    if found is None:
        return None
    remember(found.value)
    return found.value


def unset_message(name: str) -> str:
    """`environment variable X is not set`, and where else it was looked for."""
    message = f"environment variable {name} is not set"
    if _file is not None:
        message += f", and {_file.path} does not exist" if _file.missing else f", nor in {_file.path}"
    return message


class Secret:
    """A configured secret: either a `${VAR}` reference or (discouraged) a literal."""

    __slots__ = ("_literal", "ref", "where")

    def __init__(self, raw: str, where: str = "") -> None:
        m = REF.fullmatch(raw.strip())
        self.ref: str | None = m.group(1) if m else None
        self._literal: str | None = None if m else raw
        self.where = where

    @property
    def is_literal(self) -> bool:
        return self.ref is None

    def available(self) -> bool:
        return self.is_literal or lookup(self.ref or "") is not None

    def origin(self) -> str | None:
        """Where the value comes from (`the environment`, `/abs/secrets.env:3`), None if unset."""
        if self.ref is None:
            return "routes.yaml"
        found = lookup(self.ref)
        return found.origin if found else None

    def reveal(self) -> str:
        if self._literal is not None:
            value = self._literal
        else:
            found = lookup(self.ref or "")
            if found is None:
                from clawrelay.errors import ConfigError

                at = f"{self.where}: " if self.where else ""
                raise ConfigError(f"{at}{unset_message(self.ref or '')} (secret reference)")
            value = found.value
        remember(value)
        return value

    def describe(self) -> str:
        """What `routes show` prints: the reference and whether it resolves (with a secrets file,
        from where), never the value."""
        if self.ref is None:
            return f"{MASK} (literal in the file; prefer ${{VAR}})"
        origin = self.origin()
        if origin is None:
            return f"${{{self.ref}}} (NOT SET)"
        return f"${{{self.ref}}} (set{'' if _file is None else ' from ' + origin})"

    def __repr__(self) -> str:
        return f"Secret({self.describe()})"

    __str__ = __repr__


def expand(text: str, where: str = "") -> str:
    """`${VAR}` references inside a longer string (a proxy URL's password), each value remembered."""

    def value(m: re.Match[str]) -> str:
        return Secret(m.group(0), where).reveal()

    return REF.sub(value, text)


def remember(value: str | None) -> None:
    """Treat a value that did not come from the config (an env token, a device token) as secret."""
    if value and len(value) >= 4:
        _REVEALED.add(value)


def userinfo_password(url: str) -> str | None:
    """The password in a URL's userinfo, read by hand: a literal one holding `/` or `@` is not
    one urlsplit finds. The userinfo ends at the last `@` before the query or fragment, so an `@`
    there (`?client_name=relay@box`) is not taken for the end of a password."""
    rest = url.partition("://")[2]
    head = re.split(r"[?#]", rest, maxsplit=1)[0]
    if "@" not in head:
        # a literal password holding `?` or `#` (better masked too much than shown), unless what
        # follows the `?` is a query (`key=value`): then the URL has no userinfo at all
        if "@" not in rest or "=" in rest[len(head) : rest.rfind("@")]:
            return None
        head = rest
    _, colon, password = head.rpartition("@")[0].partition(":")
    return password if colon and password else None


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo (`http://user:PASSWORD@host`), if it has one."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


FRAGMENT = 8  # a run of this many characters of a secret is masked wherever it appears
_STEP = 4  # the text is probed every _STEP characters with the secrets' (FRAGMENT - _STEP + 1)-grams
_GRAM = FRAGMENT - _STEP + 1
_index: tuple[frozenset[str], dict[str, list[tuple[str, int]]]] = (frozenset(), {})


def _grams() -> dict[str, list[tuple[str, int]]]:
    """Every _GRAM-character piece of every secret of FRAGMENT or more characters → (secret, offset)."""
    global _index
    key = frozenset(_REVEALED)
    if key != _index[0]:
        grams: dict[str, list[tuple[str, int]]] = {}
        for value in key:
            if len(value) >= FRAGMENT:
                for i in range(len(value) - _GRAM + 1):
                    grams.setdefault(value[i : i + _GRAM], []).append((value, i))
        _index = (key, grams)
    return _index[1]


def _fragments(text: str) -> list[tuple[int, int]]:
    """Where `text` shares a run of FRAGMENT or more characters with a secret: merged [start, end).

    Any such run covers a position that is a multiple of _STEP followed by _GRAM characters of
    the run, so probing those positions finds every run; each hit is then grown both ways to the
    longest run it belongs to."""
    grams = _grams()
    spans: list[tuple[int, int]] = []
    if not grams:
        return spans
    grown: dict[tuple[str, int], int] = {}  # (secret, text position - secret offset) → end of its run
    for i in range(0, len(text) - _GRAM + 1, _STEP):
        for value, at in grams.get(text[i : i + _GRAM], ()):
            if grown.get((value, i - at), -1) > i:
                continue  # the same run as an earlier hit
            left = 0
            while i - left > 0 and at - left > 0 and text[i - left - 1] == value[at - left - 1]:
                left += 1
            right = _GRAM
            while i + right < len(text) and at + right < len(value) and text[i + right] == value[at + right]:
                right += 1
            grown[(value, i - at)] = i + right
            if left + right >= FRAGMENT:
                spans.append((i - left, i + right))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def scrub(text: str | None, *, fragments: bool = False) -> str | None:
    """Replace every secret revealed so far with `***`; with `fragments` (log records), also every
    run of FRAGMENT or more characters of one, since a library that shortens a line in the middle
    keeps a token's tail. Secrets shorter than FRAGMENT are masked only whole.

    Fragments only for logs: everywhere else (--json, the journal, a command's output) the text is
    the user's data, and a message or a program's output that happens to share eight characters
    with a token is not to be altered."""
    if not text or not _REVEALED:
        return text
    for value in sorted(_REVEALED, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    if not fragments or len(text) < FRAGMENT:
        return text
    spans = _fragments(text)
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text
