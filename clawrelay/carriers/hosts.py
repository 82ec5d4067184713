"""The carriers of one invocation: opened per host on first use, shared, closed together.

One ssh connection per host and one gateway connection per gateway serve every attempt and
command of a process (a group send, a sync's dozen git calls).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from clawrelay.carriers.base import Carrier
from clawrelay.carriers.result import RunResult
from clawrelay.errors import ConfigError, TransportError

if TYPE_CHECKING:
    from clawrelay.config.model import Host
    from clawrelay.config.routes import Routes
    from clawrelay.openclaw import GatewayPool


class HostCarriers:
    def __init__(self, routes: Routes, gateway_pool: Callable[[], GatewayPool] | None = None) -> None:
        self.routes = routes
        self.gateway_pool = gateway_pool
        self._open: dict[tuple[str, str], Carrier] = {}

    def names(self, host: str, via: Sequence[str] | None = None) -> list[str]:
        """The carriers to try for a host, in order: `via` when given, else all it offers."""
        offered = self._host(host).carriers()
        if not via:
            if not offered:
                raise ConfigError(f"host {host} has no carrier: give it `local: true`, `ssh:` or `node:`")
            return offered
        missing = [c for c in via if c not in offered]
        if missing:
            raise ConfigError(
                f"host {host} has no {', '.join(missing)} carrier (it has: {', '.join(offered) or 'none'})"
            )
        return list(via)

    def _host(self, host: str) -> Host:
        hosts = self.routes.config.hosts
        if host not in hosts:
            raise ConfigError(f"unknown host {host!r} (known: {', '.join(sorted(hosts)) or 'none'})")
        return hosts[host]

    def get(self, host: str, name: str) -> Carrier:
        key = (host, name)
        if key not in self._open:
            self._open[key] = self._make(host, name)
        return self._open[key]

    def _make(self, host_name: str, name: str) -> Carrier:
        host = self._host(host_name)
        if name == "local" and host.local:
            from clawrelay.carriers.local import LocalCarrier

            return LocalCarrier(strip_proxy=host.strip_proxy)
        if name == "ssh" and host.ssh is not None:
            from clawrelay.carriers.ssh import SshCarrier

            return SshCarrier(host.ssh, strip_proxy=host.strip_proxy)
        if name == "node" and host.node is not None:
            from clawrelay.carriers.node import NodeCarrier

            if self.gateway_pool is None:
                raise RuntimeError("node carrier opened without gateway connections")
            gateway = self.routes.config.gateways[host.node.gateway]
            return NodeCarrier(
                self.gateway_pool(), host.node.gateway, gateway, host.node, strip_proxy=host.strip_proxy
            )
        raise ConfigError(f"host {host_name} has no {name} carrier")

    def opened(self) -> list[tuple[tuple[str, str], Carrier]]:
        """The carriers opened so far, by (host, carrier name)."""
        return list(self._open.items())

    async def aclose(self) -> None:
        for carrier in self._open.values():
            close = getattr(carrier, "aclose", None)
            if close is not None:
                await close()
        self._open.clear()


@asynccontextmanager
async def open_carriers(routes: Routes, home: Path) -> AsyncIterator[HostCarriers]:
    """Carriers for one command (exec, sync, doctor): gateway connections are opened only when a
    node or the caller asks for them, and everything is closed together."""
    from clawrelay.openclaw.pool import GatewayPool
    from clawrelay.relay import context

    resident = context.resident()
    if resident is not None:  # inside a relay: its warm carriers, left open for the next command
        yield resident.carriers_for(routes)
        return
    pool: GatewayPool | None = None

    def gateways() -> GatewayPool:
        nonlocal pool
        pool = pool or GatewayPool(home)
        return pool

    carriers = HostCarriers(routes, gateways)
    try:
        yield carriers
    finally:
        await carriers.aclose()
        if pool is not None:
            await pool.aclose()


async def run_first(
    carriers: Sequence[Carrier],
    argv: Sequence[str],
    *,
    timeout: Callable[[], float],
    cwd: str | None = None,
    stdin: bytes | None = None,
    on_spawn: Callable[[], None] | None = None,
    chosen: Callable[[Carrier], None] | None = None,
) -> RunResult:
    """Run on the first carrier that can start the command; the next only when nothing left.

    Once a command has left for the host it is never started again on another carrier: that
    would run it twice. Failures before that point (host unreachable, node offline) move on.
    """
    errors: list[str] = []
    for carrier in carriers:
        sent = False

        def spawned() -> None:
            nonlocal sent
            sent = True
            if on_spawn is not None:
                on_spawn()

        if chosen is not None:
            chosen(carrier)
        try:
            return await carrier.run(argv, timeout=timeout(), cwd=cwd, stdin=stdin, on_spawn=spawned)
        except TransportError as e:
            if sent or carrier is carriers[-1]:
                if not errors:
                    raise
                raise TransportError(
                    f"{e} (before that, {'; '.join(errors)})",
                    reason=e.reason,
                    retryable=e.retryable,
                    retry_after=e.retry_after,
                ) from e
            errors.append(f"{carrier.name}: {e}")
    raise ConfigError("no carrier to run on")
