"""Commands in the journal: every `exec` and `sync` is a record with its attempts, like a message.

A command is inserted as `failed` before it starts and set to `delivered` only when it succeeds,
so a clawrelay killed halfway leaves a true record ("never confirmed") and never an outbox entry:
running a command again is the user's decision, not a retry policy's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from clawrelay.envelope import Envelope
from clawrelay.journal import Journal, now_ms
from clawrelay.outcome import Attempt, Delivery, Outcome, Status
from clawrelay.secrets import scrub


@dataclass
class CommandRecord:
    journal: Journal
    env: Envelope
    attempts: list[Attempt] = field(default_factory=list)
    step: int = 0

    def attempt(
        self,
        what: str,
        carrier: str | None,
        outcome: Outcome,
        *,
        started_ms: int,
        elapsed_ms: int,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.step += 1
        a = Attempt(
            step=self.step,
            transport=what,
            outcome=outcome,
            carrier=carrier,
            reason=reason,
            detail=scrub(detail),
            started_ms=started_ms,
            elapsed_ms=elapsed_ms,
        )
        self.attempts.append(a)
        self.journal.add_attempt(self.env.id, a)

    def finish(self, ok: bool, via: str | None = None) -> None:
        status = Status.DELIVERED if ok else Status.FAILED
        self.journal.finish(Delivery(self.env.id, self.env.target, status, via, self.attempts))


@contextmanager
def recorded(journal: Journal, kind: str, sender: str, host: str, text: str) -> Iterator[CommandRecord]:
    env = Envelope(sender=sender, target=host, body=scrub(text) or "", kind=kind)
    journal.add_message(env, expires_in_s=0, status=Status.FAILED)
    journal.begin_run(env.id)
    yield CommandRecord(journal, env)


class Stopwatch:
    def __init__(self) -> None:
        self.started_ms = now_ms()
        self._t0 = time.monotonic()

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)
