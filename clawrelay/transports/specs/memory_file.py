"""memory_file: an entry in the target's daily memory note, on its host (`transports.memory_file`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clawrelay.config.model import CarrierName, StepBase
from clawrelay.transports.memory_note import MAX_DAYS
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


class MemoryFileStep(StepBase, frozen=True):
    transport: ClassVar[str] = "memory_file"
    via: list[CarrierName] | None = None
    wake: bool = True  # then a `wake` on the target's gateway, where it answers, naming the entry


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    host = p.host_of(target)
    return "; ".join([await p.workspace(host, c) for c in step.carriers])


SPEC = TransportSpec(
    options=MemoryFileStep,
    impl="clawrelay.transports.memory_file:MemoryFile",
    host=True,
    resend_window=MAX_DAYS * 86400.0,  # a resend finds its id in the notes and writes nothing
    probe=_probe,
)
