"""The secrets file routes.yaml may name (`secrets: ./secrets.env`): checked, then read literally.

Its values are for a clawrelay that runs where the user's shell exports are not (a gateway's
`exec`, a cron job, a service). It is refused unless only its owner, this user, can read it, and
it is parsed by a small bounded reader of our own: no `$` expansion and no command substitution,
which is why python-dotenv (it interpolates) is not used.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from clawrelay.secrets import Found, remember


class SecretsFileError(Exception):
    """The secrets file is unsafe or unreadable: one line naming it, never holding a value."""


class SecretsFile:
    """A dotenv file of secrets: `NAME=value` lines, `export NAME=value`, `#` comments, a value in
    single or double quotes. Read literally: no `$` expansion, no command substitution, nothing
    run. Refused unless it is a regular file of this user's, without group or other access."""

    MAX_BYTES = 64 * 1024

    def __init__(self, path: Path, values: dict[str, tuple[str, int]] | None = None, mode: int = 0) -> None:
        self.path = path  # absolute
        self.missing = values is None
        self.mode = mode
        self._values = values or {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, name: str) -> Found | None:
        """The value set for `name` (an empty one counts as unset, as in the environment)."""
        entry = self._values.get(name)
        return Found(entry[0], f"{self.path}:{entry[1]}") if entry and entry[0] else None

    def line_of(self, name: str) -> int | None:
        entry = self._values.get(name)
        return entry[1] if entry else None

    @classmethod
    def read(cls, path: Path) -> SecretsFile:
        """The file's values (each remembered as a secret); a missing file is an empty, `missing`
        one. SecretsFileError when it is not a regular file, not the user's own, open to group or
        others, larger than MAX_BYTES or malformed (naming the line, never its text)."""
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(path, flags)  # O_NONBLOCK: a FIFO does not hang the open
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            raise SecretsFileError(f"{path}: cannot read: {e.strerror or e.__class__.__name__}") from None
        try:
            st = os.fstat(fd)  # of what was opened: no swap between the check and the read
            if not stat.S_ISREG(st.st_mode):
                raise SecretsFileError(f"{path}: not a regular file")
            if st.st_uid != os.geteuid():
                raise SecretsFileError(f"{path}: owned by uid {st.st_uid}, not by you (uid {os.geteuid()})")
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                raise SecretsFileError(f"{path}: mode {mode:04o} gives other users access (chmod 600 {path})")
            data = b""
            while len(data) <= cls.MAX_BYTES and (chunk := os.read(fd, cls.MAX_BYTES + 1 - len(data))):
                data += chunk
        except OSError as e:
            raise SecretsFileError(f"{path}: cannot read: {e.strerror or e.__class__.__name__}") from None
        finally:
            os.close(fd)
        if len(data) > cls.MAX_BYTES:
            raise SecretsFileError(f"{path}: larger than {cls.MAX_BYTES // 1024} KiB")
        values = _parse_dotenv(data, path)
        for value, _ in values.values():
            remember(value)
        return cls(path, values, mode)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"\s#")  # after an unquoted value, whitespace then `#` starts a comment


def _parse_dotenv(data: bytes, path: Path) -> dict[str, tuple[str, int]]:
    """NAME → (value, line). An error names the line and what is wrong, never the line's text."""
    values: dict[str, tuple[str, int]] = {}
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").removesuffix("\r").strip()
        except UnicodeDecodeError:
            raise SecretsFileError(f"{path}:{n}: not UTF-8 text") from None
        if not line or line.startswith("#"):
            continue
        if line.startswith("export") and line[6:7].isspace():
            line = line[6:].lstrip()
        name, eq, rest = line.partition("=")
        name = name.rstrip()
        if not eq:
            raise SecretsFileError(f"{path}:{n}: expected NAME=value")
        if not _NAME.fullmatch(name):
            raise SecretsFileError(f"{path}:{n}: not a variable name before `=`")
        value = _value(rest.lstrip(), path, n)
        if name in values:
            raise SecretsFileError(f"{path}:{n}: {name} is set again (first on line {values[name][1]})")
        values[name] = (value, n)
    return values


def _value(text: str, path: Path, n: int) -> str:
    """The value after `=`: quoted ('…' literal; "…" with only \\" and \\\\ escaped), else up
    to a ` #` comment."""
    if not text or text[0] not in "'\"":
        return _COMMENT.split(text, maxsplit=1)[0].rstrip()
    quote, out, i = text[0], [], 1
    while i < len(text) and text[i] != quote:
        if quote == '"' and text[i] == "\\" and text[i + 1 : i + 2] in ('"', "\\"):
            i += 1
        out.append(text[i])
        i += 1
    if i == len(text):
        raise SecretsFileError(f"{path}:{n}: no closing {quote} quote")
    tail = text[i + 1 :].strip()
    if tail and not tail.startswith("#"):
        raise SecretsFileError(f"{path}:{n}: text after the closing quote")
    return "".join(out)
