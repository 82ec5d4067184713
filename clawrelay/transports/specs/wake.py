"""wake: an event's gateway rung, the gateway's own `wake` (`transports.system_event`).

Built by `clawrelay.events` from the target's sessions_send step, never written in routes.yaml.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from clawrelay.config.model import StepBase
from clawrelay.transports.spec import TransportSpec

Mode = Literal["now", "next-heartbeat"]


class WakeStep(StepBase, frozen=True):
    transport: ClassVar[str] = "wake"
    gateway: str | None = None
    mode: Mode = "now"


SPEC = TransportSpec(
    options=WakeStep,
    impl="clawrelay.transports.system_event:Wake",
    resend_window=0.0,  # a second system event would be a second turn
    in_routes=False,
)
