"""An event's chain: the target's gateway `wake` first, then `openclaw system event` on its host.

An event is not a message down the target's chain: it only makes sense where OpenClaw's system
events exist, so its plan is built here from what the routes say about the target (the gateway
its sessions_send step uses, the carriers of its host). It is journaled like a message (kind
`event`) and never queued: an event is about now. Each rung waits for the heartbeat turn the
event starts (see `transports.system_event`), so it gets at least `TURN_WAIT_S`.
"""

from __future__ import annotations

from clawrelay.config.routes import PlannedStep, Routes
from clawrelay.errors import UsageError
from clawrelay.transports.specs.system_event import SystemEventStep
from clawrelay.transports.specs.wake import Mode, WakeStep

RUNGS = ("wake", "system_event")
TURN_WAIT_S = 30.0  # the least an event's rung is given: it waits for the agent's turn to end


def plan(routes: Routes, target: str, mode: Mode, via: str | None = None) -> list[PlannedStep]:
    if via is not None and via not in RUNGS:
        raise UsageError(f"--via: an event goes by {' or '.join(RUNGS)}, not {via!r}")
    defaults = routes.config.defaults
    steps: list[PlannedStep] = []
    session_step = routes.session_step(target)
    if session_step is not None and via in (None, "wake"):
        steps.append(
            PlannedStep(
                index=len(steps) + 1,
                transport="wake",
                options=WakeStep(gateway=session_step.gateway, mode=mode),
                timeout=max(session_step.timeout or defaults.timeout, TURN_WAIT_S),
                retries=defaults.retries if session_step.retries is None else session_step.retries,
                on_ambiguous="stop",
                carriers=(),
            )
        )
    host = routes.host_of(target)
    if host is not None and host.carriers() and via in (None, "system_event"):
        steps.append(
            PlannedStep(
                index=len(steps) + 1,
                transport="system_event",
                options=SystemEventStep(mode=mode),
                timeout=max(defaults.timeout, TURN_WAIT_S),
                retries=defaults.retries,
                on_ambiguous="stop",
                carriers=tuple(host.carriers()),
            )
        )
    if not steps:
        needs = {"wake": "a sessions_send step", "system_event": "a host"}
        has = needs.get(via or "", " or ".join(needs.values()))
        raise UsageError(f"target {target} has no way to take an event: it needs {has}")
    return steps
