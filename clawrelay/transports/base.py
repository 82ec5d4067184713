"""The one interface every transport implements, and what the router hands it per attempt.

A transport knows how to deliver one envelope one way; it knows nothing of the chain. As with
httpx, where a 404 is a response and a refused connection an exception, it has two ways to end,
one per kind of end: what it got far enough to judge (delivered; ambiguous; failed for a reason it
read in an answer, such as an exit status or the gateway's error) it returns as a `StepResult`;
what stopped it before that (a carrier, a connection, a file that cannot be written) is raised as
`TransportError`, from wherever it happened, and the router turns it into a failed attempt in one
place. It calls `ctx.mark_sent()` at the moment the message has left: if the attempt's timeout
fires after that point, or the connection is lost, the router records `ambiguous` (it may have
arrived); before it, `failed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from clawrelay.config.model import Gateway, Host
from clawrelay.config.routes import PlannedStep, Routes
from clawrelay.envelope import Envelope
from clawrelay.outcome import Attempt, StepResult

if TYPE_CHECKING:
    from clawrelay.carriers.base import Carrier
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.openclaw.client import GatewayClient
    from clawrelay.openclaw.pool import GatewayPool


@dataclass
class AttemptContext:
    routes: Routes
    target: str
    step: PlannedStep
    deadline: float  # time.monotonic() by which this attempt must end
    gateway_pool: Callable[[], GatewayPool] | None = None  # the process's connections, on first use
    host_carriers: Callable[[], HostCarriers] | None = None
    earlier: tuple[Attempt, ...] = ()  # this run's attempts so far: what a human is told failed
    sent: bool = False
    carrier: str | None = None
    connecting: str | None = None  # the gateway whose handshake is under way, if one is

    def mark_sent(self) -> None:
        self.sent = True

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def gateways(self) -> GatewayPool:
        if self.gateway_pool is None:
            raise RuntimeError("this attempt was started without gateway connections")
        return self.gateway_pool()

    def carriers(self) -> list[Carrier]:
        """The carriers of this step on the target's host, in the order to try them."""
        if self.host_carriers is None:
            raise RuntimeError("this attempt was started without host carriers")
        opened = self.host_carriers()
        host = self.routes.target(self.target).host
        assert host is not None  # config.refs guarantees a host for host steps
        return [opened.get(host, name) for name in self.step.carriers]

    def chose(self, carrier: Carrier) -> None:
        self.carrier = carrier.name

    @property
    def host(self) -> Host | None:
        return self.routes.host_of(self.target)

    @property
    def session(self) -> str:
        return self.routes.target(self.target).session

    async def writer(self, named: str | None, method: str) -> tuple[GatewayClient, str]:
        """The process's connection to the step's gateway (and its name), checked for the write
        scope `method` needs before anything is sent."""
        from clawrelay.openclaw.client import WRITE

        gateway, name = self.gateway(named)
        self.connecting = name
        client = await self.gateways.get(name, gateway.url, gateway.resolve_token(), timeout=self.remaining())
        self.connecting = None
        client.require(WRITE, method=method)
        return client, name

    def gateway(self, name: str | None = None) -> tuple[Gateway, str]:
        """The gateway this step uses (`Routes.gateway_of`) and its name."""
        name = self.routes.gateway_of(self.target, name)
        return self.routes.config.gateways[name], name


class Transport(Protocol):
    # its spec's (`transports.spec.TransportSpec`), repeated for a router given transports by class
    name: ClassVar[str]
    resend_window: ClassVar[float]

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult: ...
