"""Secret values from `${VAR}` references, and the scrubber that keeps them out of every output.

A secret is resolved only when a transport needs it, so a send that never touches a gateway does
not fail because that gateway's token variable is unset. Every value revealed in this process is
remembered, and `scrub` removes it from any text before that text reaches a log, the journal,
`--json` or an exception message.
"""

from __future__ import annotations

import os
import re

from clawrelay.errors import ConfigError

TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"  # where OpenClaw itself, and clawrelay by default, reads a gateway token
_REVEALED: set[str] = set()
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a `${VAR}` reference, whole or inside a string
MASK = "***"


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
        return self.is_literal or bool(os.environ.get(self.ref or ""))

    def reveal(self) -> str:
        if self._literal is not None:
            value = self._literal
        else:
            value = os.environ.get(self.ref or "", "")
            if not value:
                at = f"{self.where}: " if self.where else ""
                raise ConfigError(f"{at}environment variable {self.ref} is not set (secret reference)")
        remember(value)
        return value

    def describe(self) -> str:
        """What `routes show` prints: the reference and whether it resolves, never the value."""
        if self.ref is None:
            return f"{MASK} (literal in the file; prefer ${{VAR}})"
        return f"${{{self.ref}}} ({'set' if self.available() else 'NOT SET'})"

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


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo (`http://user:PASSWORD@host`), if it has one."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def scrub(text: str | None) -> str | None:
    """Replace every secret revealed so far with `***`."""
    if not text or not _REVEALED:
        return text
    for value in sorted(_REVEALED, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text
