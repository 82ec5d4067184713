"""nodes_run: the host's own `openclaw system event`, run through its node (`transports.nodes_run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clawrelay.config.model import StepBase
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


class NodesRunStep(StepBase, frozen=True):
    transport: ClassVar[str] = "nodes_run"


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    host = p.host_of(target)
    return "; ".join([await p.node(host), await p.cli(host, "node")])


SPEC = TransportSpec(
    options=NodesRunStep,
    impl="clawrelay.transports.nodes_run:NodesRun",
    host=True,
    carriers=("node",),
    resend_window=0.0,  # a second system event would be a second turn
    probe=_probe,
)
