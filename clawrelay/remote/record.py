"""Commands in the journal: every `exec` and `sync` is a record with its attempts, like a message.

A command is inserted as `failed`, with its attempt `started` and its claim held, before it
starts, and set to `delivered` only when it succeeds. So a clawrelay killed halfway leaves a true
record, never an outbox entry: the next command that opens the journal finds the attempt open
and its claim free, and records it `ambiguous` (interrupted: it may have run). Running a command
again is the user's decision, not a retry policy's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from clawrelay.envelope import Envelope
from clawrelay.errors import ClawrelayError
from clawrelay.journal import Journal, now_ms
from clawrelay.outcome import Attempt, Delivery, Outcome, Status
from clawrelay.secrets import scrub


class Stopwatch:
    def __init__(self) -> None:
        self.started_ms = now_ms()
        self._t0 = time.monotonic()

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)


@dataclass
class CommandRecord:
    journal: Journal
    env: Envelope
    attempts: list[Attempt] = field(default_factory=list)
    step: int = 0
    watch: Stopwatch = field(default_factory=Stopwatch)
    open_row: int | None = None  # the attempt journaled as started, until it ends

    def attempt(
        self,
        what: str,
        carrier: str | None,
        outcome: Outcome,
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The command's one attempt, timed from when the record was opened."""
        self.step += 1
        a = Attempt(
            step=self.step,
            transport=what,
            outcome=outcome,
            carrier=carrier,
            reason=reason,
            detail=scrub(detail),
            started_ms=self.watch.started_ms,
            elapsed_ms=self.watch.elapsed_ms,
        )
        self.attempts.append(a)
        if self.open_row is not None:
            self.journal.end_attempt(self.open_row, a)
            self.open_row = None
        else:
            self.journal.add_attempt(self.env.id, a)

    def failed(self, what: str, carrier: str | None, err: ClawrelayError) -> None:
        self.attempt(what, carrier, Outcome.FAILED, reason=err.reason, detail=str(err))
        self.finish(False)

    def finish(self, ok: bool, via: str | None = None) -> None:
        status = Status.DELIVERED if ok else Status.FAILED
        self.journal.finish(Delivery(self.env.id, self.env.target, status, via, self.attempts))


@contextmanager
def record_command(journal: Journal, kind: str, sender: str, host: str, text: str) -> Iterator[CommandRecord]:
    env = Envelope(sender=sender, target=host, body=scrub(text) or "", kind=kind)
    claim = journal.claim(env.id)
    try:
        journal.add_message(env, expires_in_s=0, status=Status.FAILED)
        run = journal.begin_run(env.id)
        record = CommandRecord(journal, env)
        record.open_row = journal.start_attempt(
            env.id,
            Attempt(
                step=1, transport=kind, outcome=Outcome.STARTED, started_ms=record.watch.started_ms, run=run
            ),
        )
        yield record
    finally:
        if claim is not None:
            claim.release(finished=True)
