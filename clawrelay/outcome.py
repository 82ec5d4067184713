"""What one attempt came to, and what a whole send came to.

Modelled on Apprise's result tree: a send has attempts, each with an outcome and a stable
reason, so the journal can say which path worked and why the others did not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"  # the request left and no answer came: it may have arrived
    STARTED = "started"  # begun and not ended yet: in flight (a dead sender's is turned into ambiguous)


class Status(StrEnum):
    """A message's state in the journal."""

    QUEUED = "queued"  # not delivered yet: in flight, or waiting in the outbox
    DELIVERED = "delivered"
    AMBIGUOUS = "ambiguous"  # may have arrived; never retried automatically
    # handed to the fleet's shared outbox: any relay that reaches the target delivers it, and this
    # machine's own flusher leaves it to them (docs/fleet.md)
    OFFERED = "offered"
    DEAD = "dead"  # expired in the outbox
    PURGED = "purged"  # taken out of the outbox by `clawrelay outbox purge`
    FAILED = "failed"  # an event or a command (`exec`, `sync`) that did not succeed: never queued or retried


@dataclass(frozen=True)
class StepResult:
    """What a transport reports for one attempt. The carrier it went by is not here: a transport
    names it on its context (`AttemptContext.chose`) and the router puts it on the Attempt."""

    outcome: Outcome
    reason: str | None = None
    retryable: bool = False
    detail: str | None = None
    retry_after: float | None = None
    reply: str | None = None
    # the reply still to come (a gateway run's final answer), for a sender that waits for it
    later: Any = field(default=None, repr=False, compare=False)
    # where the message was put, when that is a place (a memory note's path), for what follows the
    # delivery (memory_file's wake names it) to read, not to parse back out of `detail`
    where: str | None = None

    @classmethod
    def delivered(
        cls,
        detail: str | None = None,
        *,
        reply: str | None = None,
        later: Any = None,
    ) -> StepResult:
        return cls(Outcome.DELIVERED, detail=detail, reply=reply, later=later)

    @classmethod
    def failed(
        cls,
        reason: str,
        detail: str | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> StepResult:
        return cls(Outcome.FAILED, reason, retryable, detail, retry_after=retry_after)

    @classmethod
    def ambiguous(
        cls,
        reason: str,
        detail: str | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> StepResult:
        """`retryable` only from a transport whose next try resumes without repeating what
        arrived (Telegram's remaining parts); any other ambiguous attempt is never retried."""
        return cls(Outcome.AMBIGUOUS, reason, retryable, detail, retry_after=retry_after)


@dataclass
class Attempt:
    """One try of one transport, as journaled and shown."""

    step: int  # position in the chain, from 1
    transport: str
    outcome: Outcome
    carrier: str | None = None
    reason: str | None = None
    retryable: bool = False
    detail: str | None = None
    started_ms: int = 0
    elapsed_ms: int = 0
    run: int = 1  # 1 for the first send, then one more for each outbox retry

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["outcome"] = str(self.outcome)
        return {
            k: d[k]
            for k in (
                "transport",
                "carrier",
                "outcome",
                "reason",
                "retryable",
                "elapsed_ms",
                "detail",
                "step",
                "run",
            )
        }


@dataclass
class Delivery:
    """The result of sending one message to one target."""

    id: str
    target: str
    status: Status
    via: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    reply: str | None = None
    # with `send --wait-reply`: replied, no_reply, run_failed, lost or unavailable (see ReplyWait)
    reply_status: str | None = None
    reply_error: str | None = None  # why no reply came, in the gateway's words
    later: Any = field(default=None, repr=False, compare=False)  # StepResult.later of the delivery

    @property
    def queued(self) -> bool:
        return self.status is Status.QUEUED

    @property
    def exit_code(self) -> int:
        return {Status.DELIVERED: 0, Status.AMBIGUOUS: 4}.get(self.status, 1)

    def to_json(self) -> dict[str, object]:
        status = str(self.status) if self.status in (Status.DELIVERED, Status.AMBIGUOUS) else "failed"
        out: dict[str, object] = {
            "id": self.id,
            "target": self.target,
            "status": status,
            "via": self.via,
            "queued": self.queued,
            "attempts": [a.to_json() for a in self.attempts],
        }
        if self.reply is not None:
            out["reply"] = self.reply
        if self.reply_status is not None:
            out["reply_status"] = self.reply_status
        if self.reply_error is not None:
            out["reply_error"] = self.reply_error
        return out


class ReplyWait(StrEnum):
    """What came of waiting for the agent's answer to a delivered message (`send --wait-reply`).
    The message's own status never depends on it: it was delivered either way."""

    REPLIED = "replied"
    NO_REPLY = "no_reply"  # none within the wait; the run goes on over there
    RUN_FAILED = "run_failed"  # the run ended without an answer (an error, or aborted)
    LOST = "lost"  # the connection went before the answer came
    UNAVAILABLE = "unavailable"  # delivered by a way that carries no answer (a memory note, Telegram)
