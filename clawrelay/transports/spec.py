"""What clawrelay knows of a transport before importing it: its spec.

Every reader of a transport reads this one object, so a new transport is described once (its
module's `SPEC`, named in `transports.registry`): config validates a chain step with its `options`
class and refuses it without a host when it needs one; routes plans its carriers; refs checks what
else in the file it needs; doctor, status and the flusher probe it; the router imports its class
by `impl` on first use and recovery reads its `resend_window`. A spec module is imported whenever
a config names the transport, so it stays small: the delivering code is behind `impl`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from clawrelay.config.model import Config, Host, StepBase
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes
    from clawrelay.transports.base import Transport

    # doctor's and status's look at one step: a line saying what works, or a ClawrelayError
    # (with its `fix`) saying what does not; nothing is sent to any agent
    Probe = Callable[[Probes, str, PlannedStep], Awaitable[str]]
    # what a step needs from the rest of the file: (the key path under the step, what is wrong)
    RefCheck = Callable[[Config, str, StepBase], Iterator[tuple[tuple[str | int, ...], str]]]


@dataclass(frozen=True)
class TransportSpec:
    options: type[StepBase]  # the keys a chain step of it may hold; its `transport` is the name
    impl: str  # "module:Class" of its `Transport`, imported on first use
    # it acts on the target's host (a file, a command there), so the target needs `host:`, and
    # it goes by the host's carriers
    host: bool = False
    # the only carriers it goes by (nodes_run: the node); None: the step's `via`, else every
    # carrier the host offers, in the host's order
    carriers: tuple[str, ...] | None = None
    # seconds after an attempt started within which resending it, should its sender die
    # mid-attempt, cannot show the message twice (0: never; see clawrelay.recovery)
    resend_window: float = 0.0
    probe: Probe | None = None
    check: RefCheck | None = None
    in_routes: bool = True  # a chain step of routes.yaml; False: an event's rung (clawrelay.events)

    @property
    def name(self) -> str:
        return self.options.transport

    def carriers_for(self, step: StepBase, host: Host | None) -> tuple[str, ...]:
        """The carriers a step of this transport goes by, in the order to try them."""
        if self.carriers is not None:
            return self.carriers
        if not self.host or host is None:
            return ()
        via: list[str] | None = getattr(step, "via", None)
        return tuple(via or host.carriers())

    def implementation(self) -> type[Transport]:
        module, _, cls = self.impl.partition(":")
        return cast("type[Transport]", getattr(import_module(module), cls))
