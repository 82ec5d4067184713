"""system_event: an event's host rung, `openclaw system event` over the host's carriers
(`transports.system_event`). Built by `clawrelay.events`, never written in routes.yaml."""

from __future__ import annotations

from typing import ClassVar

from clawrelay.config.model import StepBase
from clawrelay.transports.spec import TransportSpec
from clawrelay.transports.specs.wake import Mode


class SystemEventStep(StepBase, frozen=True):
    transport: ClassVar[str] = "system_event"
    mode: Mode = "now"


SPEC = TransportSpec(
    options=SystemEventStep,
    impl="clawrelay.transports.system_event:SystemEvent",
    host=True,
    resend_window=0.0,  # a second system event would be a second turn
    in_routes=False,
)
