"""The one interface every transport implements, and what the router hands it per attempt.

A transport knows how to deliver one envelope one way; it knows nothing of the chain. It reports
through a `StepResult` (or raises `TransportError`), and calls `ctx.mark_sent()` at the moment
the message has left: if the attempt's timeout fires after that point the router records
`ambiguous` (it may have arrived), before it `failed` with reason `timeout`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Protocol

from clawrelay.config.model import Host
from clawrelay.config.routes import PlannedStep, Routes
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult


@dataclass
class AttemptContext:
    routes: Routes
    target: str
    step: PlannedStep
    deadline: float  # time.monotonic() by which this attempt must end
    sent: bool = False
    carrier: str | None = None

    def mark_sent(self) -> None:
        self.sent = True

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def host(self) -> Host | None:
        return self.routes.host_of(self.target)


class Transport(Protocol):
    name: ClassVar[str]

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult: ...
