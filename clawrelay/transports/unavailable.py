"""A transport named in a chain that this version does not have yet.

It is tried like any other and reported as `failed` with reason `not_available`: the journal
says so plainly instead of skipping the rung or pretending it worked.
"""

from __future__ import annotations

from clawrelay import __version__
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.transports.base import AttemptContext


class NotAvailable:
    def __init__(self, name: str) -> None:
        self.name = name

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        return StepResult.failed(
            "not_available", f"the {self.name} transport is not part of clawrelay {__version__} yet")
