"""sessions_send: straight into the target's session through its gateway (`transports.sessions_send`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from clawrelay.config.model import StepBase
from clawrelay.config.refs import known
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.model import Config
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


class SessionsSendStep(StepBase, frozen=True):
    transport: ClassVar[str] = "sessions_send"
    gateway: str | None = None
    wait_reply: bool = False


def _check(config: Config, target: str, step: StepBase) -> Iterator[tuple[tuple[str | int, ...], str]]:
    assert isinstance(step, SessionsSendStep)
    host_name = config.targets[target].host
    host = config.hosts.get(host_name) if host_name else None
    gw = step.gateway
    if gw is None and not (host and host.node) and len(config.gateways) != 1:
        yield (), "name the `gateway` (the target's host has no node gateway)"
    elif gw is not None and gw not in config.gateways:
        yield ("gateway",), f"unknown gateway {gw!r} (known: {known(config.gateways)})"


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    opts = step.options
    assert isinstance(opts, SessionsSendStep)
    return await p.gateway(p.routes.gateway_of(target, opts.gateway))


SPEC = TransportSpec(
    options=SessionsSendStep,
    impl="clawrelay.transports.sessions_send:SessionsSend",
    # an interrupted attempt may be resent while the gateway still drops a repeat of its
    # idempotency key (about five minutes, PROTOCOL.md); a margin is kept
    resend_window=240.0,
    probe=_probe,
    check=_check,
)
