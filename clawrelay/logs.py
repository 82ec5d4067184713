"""Library log records (httpx, python-telegram-bot, asyncssh) on stderr, never with a secret.

python-telegram-bot and httpx log request URLs, and the Bot API puts the bot token in the URL.
Every record goes through `scrub` on its way out. Warnings and errors always show;
`CLAWRELAY_LOG=debug` (or info) shows everything at that level, for finding what a transport did.

websockets logs a frame shortened in the middle (`> TEXT '{"type":"req",...tail"}}}' [640 bytes]`),
so what is printed may hold a piece of a token too short to recognise as that token, or a
token nobody has told `scrub` about yet (a deviceToken in the gateway's hello). A record whose
argument carries a payload (`.data`) is judged on the whole payload: one that carries
credentials (an `"auth"` or `…token`/`password`/`secret` key) or any remembered secret is
logged as `TEXT *** [640 bytes, credentials masked]`.

A record is one line (newlines collapsed, an exception as `(Type: message)` at its end) unless
`CLAWRELAY_LOG=debug`, which also prints the traceback a library attached: a user never sees
a Python traceback for a library's complaint.
"""

from __future__ import annotations

import logging
import os
import re

from clawrelay.secrets import MASK, scrub

LEVEL_ENV = "CLAWRELAY_LOG"
_CREDENTIALS = re.compile(rb'"(?:auth|[A-Za-z_]*(?:[Tt]oken|TOKEN)|password|secret|signature)"\s*:')
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _masked(arg: object) -> object:
    """A payload-bearing argument (websockets' Frame), or a stand-in when its payload is secret."""
    data = getattr(arg, "data", None)
    if not isinstance(data, bytes | bytearray | memoryview):
        return arg
    raw = bytes(data)
    text = raw.decode("utf-8", "replace")
    if not _CREDENTIALS.search(raw) and scrub(text, fragments=True) == text:
        return arg
    kind = getattr(getattr(arg, "opcode", None), "name", None) or type(arg).__name__
    return f"{kind} {MASK} [{len(raw)} bytes, credentials masked]"


class MaskingFilter(logging.Filter):
    """Replace each argument whose full payload carries credentials before it is shortened."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_masked(a) for a in record.args)
        return True


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, fmt: str, *, traceback: bool = False) -> None:
        super().__init__(fmt)
        self.traceback = traceback

    def format(self, record: logging.LogRecord) -> str:
        if self.traceback:
            return scrub(super().format(record), fragments=True) or ""
        record.message = record.getMessage()
        line = self.formatMessage(record)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            line += f" ({type(exc).__name__}: {exc})" if str(exc) else f" ({type(exc).__name__})"
        return scrub(_LINE_BREAKS.sub(" ", line).strip(), fragments=True) or ""


def configure() -> None:
    from clawrelay.relay import context

    if context.current.get() is not None:
        # a command inside the relay: the relay's logging stays as it is (one client's
        # CLAWRELAY_LOG=debug must not turn the whole relay's level up; --no-relay runs it here)
        return
    level = os.environ.get(LEVEL_ENV, "warning").upper()
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(
        ScrubbingFormatter("clawrelay[%(name)s] %(levelname)s: %(message)s", traceback=level == "DEBUG")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.WARNING)
