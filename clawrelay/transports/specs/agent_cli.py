"""agent_cli: `openclaw agent` on the target's host, over its carriers (`transports.agent_cli`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clawrelay.config.model import CarrierName, StepBase
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


class AgentCliStep(StepBase, frozen=True):
    transport: ClassVar[str] = "agent_cli"
    via: list[CarrierName] | None = None


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    host = p.host_of(target)
    return "; ".join([await p.cli(host, c) for c in step.carriers])


SPEC = TransportSpec(
    options=AgentCliStep,
    impl="clawrelay.transports.agent_cli:AgentCli",
    host=True,
    resend_window=0.0,  # `openclaw agent` takes no idempotency key: a resend is a second turn
    probe=_probe,
)
