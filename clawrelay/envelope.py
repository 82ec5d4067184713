"""One message as it travels: who sent it, for whom, its id and how many relays it has been through.

The id goes on every medium (gateway idempotencyKey, memory entry header, Telegram text), so a
retry or a fallback is always recognisable as the same message.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from clawrelay.ids import new_id

HOPS_ENV = "CLAWRELAY_HOPS"


def check_text(text: str, what: str = "the message") -> str:
    """A message is text that every transport can carry: valid UTF-8 (an argument that was not
    arrives as lone surrogates) and no NUL, which no argv, note or shell variable can hold."""
    from clawrelay.errors import UsageError

    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"{what} is not valid UTF-8 (at character {e.start + 1})") from None
    if "\x00" in text:
        raise UsageError(
            f"{what} holds a NUL character (at character {text.index(chr(0)) + 1}): only text can be sent"
        ) from None
    return text


def inherited_hops() -> int:
    """Hops of the message that caused this process, when a relay runs clawrelay again."""
    try:
        return max(0, int(os.environ.get(HOPS_ENV, "0")))
    except ValueError:
        return 0


@dataclass(frozen=True)
class Envelope:
    sender: str
    target: str
    body: str
    id: str = field(default_factory=new_id)
    hops: int = 0
    created_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    kind: str = "message"

    def headline(self) -> str:
        """The one line a human or an agent reads first: sender and id."""
        return f"[clawrelay] from {self.sender} · id {self.id}"

    def as_text(self) -> str:
        """Body with its headline, for media that carry one text (gateway, Telegram)."""
        return f"{self.headline()}\n{self.body}"

    def env(self) -> dict[str, str]:
        """Variables a program run for this message gets, so a relay can carry the hop count."""
        return {
            "CLAWRELAY_ID": self.id,
            "CLAWRELAY_SENDER": self.sender,
            "CLAWRELAY_TARGET": self.target,
            HOPS_ENV: str(self.hops + 1),
        }
