"""Library log records (httpx, python-telegram-bot, asyncssh) on stderr, never with a secret.

python-telegram-bot and httpx log request URLs, and the Bot API puts the bot token in the URL.
Every record goes through `scrub` on its way out. Warnings and errors always show;
`CLAWRELAY_LOG=debug` (or info) shows everything at that level, for finding what a transport did.
"""

from __future__ import annotations

import logging
import os

from clawrelay.secrets import scrub

LEVEL_ENV = "CLAWRELAY_LOG"


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record)) or ""


def configure() -> None:
    level = os.environ.get(LEVEL_ENV, "warning").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter("clawrelay[%(name)s] %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.WARNING)
