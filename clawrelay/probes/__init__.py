"""Whether each way to a target would work now, probed for real without sending anything to an agent.

Doctor, status and the outbox flusher ask; each transport says how its step is probed
(`TransportSpec.probe`), with the probes here: a gateway is connected to with the step's scopes;
a node is looked up (and its pairing request, when it waits for one); a host's carrier runs
`openclaw --version` and `test -w` on the workspace. Results are kept per gateway, host and
carrier, so ten targets on one gateway connect once. A failure is a `ClawrelayError` with a
stable reason and, where one exists, the exact command that fixes it (`fix`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from clawrelay.errors import ClawrelayError, ConfigError
from clawrelay.probes.fixes import carrier_failure, gateway_fix
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.carriers.base import Carrier
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config.routes import PlannedStep, Routes
    from clawrelay.openclaw import GatewayClient, GatewayPool


class Probes:
    def __init__(self, routes: Routes, carriers: HostCarriers, timeout: float) -> None:
        self.routes, self.carriers, self.timeout = routes, carriers, timeout
        self._memo: dict[tuple[str, ...], asyncio.Task[str]] = {}
        self._host_of: dict[int, str] = {}

    @property
    def pool(self) -> GatewayPool:
        assert self.carriers.gateway_pool is not None  # carriers.hosts.open_carriers always gives one
        return self.carriers.gateway_pool()

    def host_of(self, target: str) -> str:
        """The target's host name (config.refs guarantees one for a host transport's step)."""
        host = self.routes.config.targets[target].host
        assert host is not None
        return host

    async def once(self, key: tuple[str, ...], probe: Callable[[], Awaitable[str]]) -> str:
        """Each gateway, node, host and bot is probed once, however many steps (checked at the
        same time, by `status`) need it: later callers await the same task."""
        if key not in self._memo:
            task = self._memo[key] = asyncio.ensure_future(probe())
            # a caller that gave up (its timeout) leaves the answer unread: read, so it is not logged
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(self._memo[key])

    async def step(self, target: str, step: PlannedStep) -> str:
        """What one chain step needs, probed by its transport's `probe`; a ClawrelayError (with
        its `fix`) when something is not there. A step that goes by a node also has the node's
        exec policy looked at: a node refusing a probe is told every allowlist entry at once."""
        from clawrelay.transports import registry

        spec = registry.spec(step.transport)
        if spec.probe is None:
            return f"{step.transport} has no probe: it is tried when a message goes"
        by_node = "node" in step.carriers
        if by_node:
            from clawrelay.carriers.node_approval import ASK_HUMANS

            ASK_HUMANS.set(False)  # a node that wants an approval for a probe: its allowlist line, at once
        try:
            found = await spec.probe(self, target, step)
        except ClawrelayError as e:
            if e.reason == Reason.DENIED and by_node:
                await self.node_policy(self.host_of(target))
            raise
        return f"{found}; {await self.node_policy(self.host_of(target))}" if by_node else found

    # -- gateways and nodes ---------------------------------------------------------------------

    async def gateway(self, name: str) -> str:
        return await self.once(("gateway", name), lambda: self._gateway(name))

    async def _client(self, name: str) -> GatewayClient:
        from clawrelay.openclaw import READ, WRITE, GatewayError

        gw = self.routes.config.gateways[name]
        try:
            token = gw.resolve_token()
        except ConfigError as e:
            ref = gw.token.ref if gw.token else "VAR"
            raise ClawrelayError(
                e.message, reason=Reason.CONFIG, fix=f"export {ref}=<the gateway's token>"
            ) from None
        try:
            client = await self.pool.get(name, gw.url, token, scopes=(READ, WRITE), timeout=self.timeout)
            client.require(READ, WRITE, method="sending")
        except GatewayError as e:
            raise ClawrelayError(
                e.message, reason=e.reason, fix=gateway_fix(e, name, gw.token.ref if gw.token else None)
            ) from None
        return client

    async def _gateway(self, name: str) -> str:
        await self._client(name)
        url = self.routes.config.gateways[name].url
        return f"gateway {name} ({url}): token accepted, device paired, scopes read+write"

    async def node(self, host: str) -> str:
        return await self.once(("node", host), lambda: self._node(host))

    async def _node(self, host_name: str) -> str:
        from clawrelay.openclaw import GatewayError
        from clawrelay.openclaw.nodes import approval, known, matching

        ref = self.routes.config.hosts[host_name].node
        assert ref is not None
        client = await self._client(ref.gateway)
        try:
            nodes = (await client.request("node.list", {}, timeout=self.timeout)).get("nodes") or []
        except GatewayError as e:
            raise ClawrelayError(e.message, reason=e.reason) from None
        found = matching(nodes, ref.id)
        if not found:
            pending = await self._pending(ref.gateway, ref.id)
            if pending:
                raise ClawrelayError(
                    f"node {ref.id} on {ref.gateway} is waiting for approval",
                    reason=Reason.PAIRING_REQUIRED,
                    fix=f"openclaw nodes approve {pending}",
                )
            raise ClawrelayError(
                f"no node {ref.id} on gateway {ref.gateway} (known: {known(nodes)})",
                reason=Reason.NOT_FOUND,
                fix=f"on {host_name}: openclaw node run --host <gateway host> --display-name {ref.id}",
            )
        n = found[0]
        label = f"node {ref.id} on {ref.gateway}"
        if approval(n) != "approved":
            rid = await self._pending(ref.gateway, ref.id)
            raise ClawrelayError(
                f"{label} is not approved",
                reason=Reason.PAIRING_REQUIRED,
                fix=f"openclaw nodes approve {rid or '<requestId from: openclaw nodes pending>'}",
            )
        if not n.get("connected"):
            raise ClawrelayError(
                f"{label} is not connected",
                reason=Reason.NODE_OFFLINE,
                fix=f"on {host_name}: start the node host (openclaw node run …, or its service)",
            )
        if "system.run" not in (n.get("commands") or []):
            raise ClawrelayError(
                f"{label} does not offer system.run",
                reason=Reason.DENIED,
                fix=f"on {host_name}: enable exec for the node host (openclaw approvals; see docs)",
            )
        return f"{label}: connected, approved, system.run offered"

    async def node_policy(self, host: str) -> str:
        """What the node's exec policy lets clawrelay run (doctor; `status` asks only `node`)."""
        from clawrelay.probes import node_policy

        return await self.once(("node-policy", host), lambda: node_policy.probe(self, host))

    async def _pending(self, gateway: str, node: str) -> str | None:
        """The id of this node's pairing request, when the gateway lets this device see them."""
        from clawrelay.openclaw import GatewayError
        from clawrelay.openclaw.client import PAIRING, READ
        from clawrelay.openclaw.nodes import matching

        gw = self.routes.config.gateways[gateway]
        try:
            client = await self.pool.get(
                gateway, gw.url, gw.resolve_token(), scopes=(READ, PAIRING), timeout=self.timeout
            )
            doc = await client.request("node.pair.list", {}, timeout=self.timeout)
        except GatewayError:
            return None
        waiting = matching(doc.get("pending") or [], node)  # a request names its node like node.list does
        return str(waiting[0].get("requestId")) if waiting else None

    # -- hosts ----------------------------------------------------------------------------------

    def carrier(self, host: str, name: str) -> Carrier:
        c = self.carriers.get(host, name)
        self._host_of[id(c)] = host  # for its fix: `hosts.NAME…`, `on NAME: …`
        return c

    async def cli(self, host: str, carrier: str) -> str:
        return await self.once(("cli", host, carrier), lambda: self._cli(host, carrier))

    async def _cli(self, host_name: str, carrier_name: str) -> str:
        c = self.carrier(host_name, carrier_name)
        prefix = self.routes.config.hosts[host_name].openclaw
        res = await self._run(c, [*await self.expanded(prefix, c), "--version"])
        if res.exit_code == 127 or (res.exit_code != 0 and b"not found" in res.stderr.lower()):
            raise ClawrelayError(
                f"{c.label}: `{' '.join(prefix)}` is not found there",
                reason=Reason.NOT_FOUND,
                fix=f"set hosts.{host_name}.openclaw to its full path there (`command -v openclaw` "
                "in a login shell on that host)",
            )
        if res.exit_code != 0:
            raise ClawrelayError(
                f"{c.label}: `{' '.join(prefix)} --version` exited {res.exit_code}: {res.stderr_tail()}",
                reason=Reason.REMOTE_ERROR,
                fix=f"on {host_name}: `{' '.join(prefix)} --version` shows the error; reinstall or update "
                "OpenClaw there (openclaw update)",
            )
        version = res.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"{version[0]} via {c.label}"

    async def reach(self, host: str, carrier: str) -> str:
        """The host answers over this carrier (it is asked for its home folder)."""
        return await self.once(("reach", host, carrier), lambda: self._reach(host, carrier))

    async def _reach(self, host_name: str, carrier_name: str) -> str:
        c = self.carrier(host_name, carrier_name)
        return f"{c.label} answers (home {await self._home(c)})"

    async def workspace(self, host: str, carrier: str) -> str:
        return await self.once(("workspace", host, carrier), lambda: self._workspace(host, carrier))

    async def _workspace(self, host_name: str, carrier_name: str) -> str:
        from clawrelay.carriers.base import under_home

        c = self.carrier(host_name, carrier_name)
        ws = self.routes.config.hosts[host_name].workspace
        path = under_home(ws, await self._home(c)) if ws.startswith("~") else ws
        memory = f"{path.rstrip('/')}/memory"
        if (await self._run(c, ["test", "-d", path])).exit_code != 0:
            raise ClawrelayError(
                f"{c.label}: workspace {path} does not exist",
                reason=Reason.NOT_FOUND,
                fix=f"on {host_name}: mkdir -p {path}",
            )
        if (await self._run(c, ["test", "-d", memory])).exit_code == 0:
            if (await self._run(c, ["test", "-w", memory])).exit_code != 0:
                raise ClawrelayError(
                    f"{c.label}: {memory} is not writable",
                    reason=Reason.IO_ERROR,
                    fix=f"on {host_name}: chmod u+w {memory}",
                )
            return f"{memory} writable via {c.label}"
        if (await self._run(c, ["test", "-w", path])).exit_code != 0:
            raise ClawrelayError(
                f"{c.label}: workspace {path} is not writable",
                reason=Reason.IO_ERROR,
                fix=f"on {host_name}: chmod u+w {path}",
            )
        return f"{path} writable (memory/ is created with the first entry) via {c.label}"

    async def _home(self, c: Carrier) -> str:
        try:
            return await c.home()
        except ClawrelayError as e:
            raise self.with_fix(e, c) from None

    async def _run(self, c: Carrier, argv: list[str]):  # type: ignore[no-untyped-def]
        try:
            return await c.run(argv, timeout=self.timeout)
        except ClawrelayError as e:
            raise self.with_fix(e, c) from None

    async def expanded(self, argv: list[str], c: Carrier) -> list[str]:
        """`argv` with `~/…` as that host's home: no shell there expands it in a quoted argv."""
        from clawrelay.transports.remote_cli import expand_home

        try:
            return await expand_home(argv, c)
        except ClawrelayError as e:
            raise self.with_fix(e, c) from None

    def with_fix(self, e: ClawrelayError, c: Carrier) -> ClawrelayError:
        return carrier_failure(e, c, self._host_of.get(id(c), "HOST"), self.routes.config)
