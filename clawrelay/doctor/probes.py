"""What each step needs, probed for real without sending anything to an agent.

A gateway is connected to with the step's scopes; a node is looked up (and its pairing request,
when it waits for one); a host's carrier runs `openclaw --version` and `test -w` on the
workspace; a Telegram bot answers getMe and getChat. Results are kept per gateway, host and
carrier, so ten targets on one gateway connect once. Every failure becomes `Broken` with a
stable reason and, where one exists, the exact command that fixes it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from clawrelay.doctor.fixes import carrier_broken, gateway_fix, telegram_config_fix, telegram_fix
from clawrelay.doctor.report import Broken
from clawrelay.errors import ClawrelayError, ConfigError, TransportError
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
        assert self.carriers.gateway_pool is not None  # carriers.hosts.opened always gives one
        return self.carriers.gateway_pool()

    async def _once(self, key: tuple[str, ...], probe: Callable[[], Awaitable[str]]) -> str:
        """Each gateway, node, host and bot is probed once, however many steps (checked at the
        same time, by `status`) need it: later callers await the same task."""
        if key not in self._memo:
            task = self._memo[key] = asyncio.ensure_future(probe())
            # a caller that gave up (its timeout) leaves the answer unread: read, so it is not logged
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(self._memo[key])

    async def step(self, target: str, step: PlannedStep) -> str:
        """What one chain step needs, probed; `Broken` (or a ClawrelayError) when it is not there."""
        from clawrelay.config.model import CommandStep, SessionsSendStep, TelegramStep

        opts = step.options
        host = self.routes.config.targets[target].host
        if isinstance(opts, SessionsSendStep):
            return await self.gateway(self.routes.gateway_of(target, opts.gateway))
        if isinstance(opts, TelegramStep):
            return await self.telegram(opts.chat_id)
        if isinstance(opts, CommandStep):
            return command(opts.argv[0])
        assert host is not None  # config.refs guarantees a host for host steps
        if "node" in step.carriers:
            from clawrelay.carriers.node_approval import ASK_HUMANS

            ASK_HUMANS.set(False)  # a node that wants an approval for a probe: its allowlist line, at once
        probe = self.cli if step.transport == "agent_cli" else self.workspace
        try:
            if step.transport == "nodes_run":
                found = [await self.node(host), await self.cli(host, "node")]
            else:
                found = [await probe(host, c) for c in step.carriers]
        except Broken as e:  # a node refusing a probe: every allowlist entry it needs, at once
            if e.reason == Reason.DENIED and "node" in step.carriers:
                await self.node_policy(host)
            raise
        return "; ".join([*found, *([await self.node_policy(host)] if "node" in step.carriers else [])])

    # -- gateways and nodes ---------------------------------------------------------------------

    async def gateway(self, name: str) -> str:
        return await self._once(("gateway", name), lambda: self._gateway(name))

    async def _client(self, name: str) -> GatewayClient:
        from clawrelay.openclaw import READ, WRITE, GatewayError

        gw = self.routes.config.gateways[name]
        try:
            token = gw.resolve_token()
        except ConfigError as e:
            ref = gw.token.ref if gw.token else "VAR"
            raise Broken(e.message, Reason.CONFIG, f"export {ref}=<the gateway's token>") from None
        try:
            client = await self.pool.get(name, gw.url, token, scopes=(READ, WRITE), timeout=self.timeout)
            client.require(READ, WRITE, method="sending")
        except GatewayError as e:
            raise Broken(
                e.message, e.reason, gateway_fix(e, name, gw.token.ref if gw.token else None)
            ) from None
        return client

    async def _gateway(self, name: str) -> str:
        await self._client(name)
        url = self.routes.config.gateways[name].url
        return f"gateway {name} ({url}): token accepted, device paired, scopes read+write"

    async def node(self, host: str) -> str:
        return await self._once(("node", host), lambda: self._node(host))

    async def _node(self, host_name: str) -> str:
        from clawrelay.openclaw import GatewayError
        from clawrelay.openclaw.nodes import approval, known, matching

        ref = self.routes.config.hosts[host_name].node
        assert ref is not None
        client = await self._client(ref.gateway)
        try:
            nodes = (await client.request("node.list", {}, timeout=self.timeout)).get("nodes") or []
        except GatewayError as e:
            raise Broken(e.message, e.reason) from None
        found = matching(nodes, ref.id)
        if not found:
            pending = await self._pending(ref.gateway, ref.id)
            if pending:
                raise Broken(
                    f"node {ref.id} on {ref.gateway} is waiting for approval",
                    Reason.PAIRING_REQUIRED,
                    f"openclaw nodes approve {pending}",
                )
            raise Broken(
                f"no node {ref.id} on gateway {ref.gateway} (known: {known(nodes)})",
                Reason.NOT_FOUND,
                f"on {host_name}: openclaw node run --host <gateway host> --display-name {ref.id}",
            )
        n = found[0]
        label = f"node {ref.id} on {ref.gateway}"
        if approval(n) != "approved":
            rid = await self._pending(ref.gateway, ref.id)
            raise Broken(
                f"{label} is not approved",
                Reason.PAIRING_REQUIRED,
                f"openclaw nodes approve {rid or '<requestId from: openclaw nodes pending>'}",
            )
        if not n.get("connected"):
            raise Broken(
                f"{label} is not connected",
                Reason.NODE_OFFLINE,
                f"on {host_name}: start the node host (openclaw node run …, or its service)",
            )
        if "system.run" not in (n.get("commands") or []):
            raise Broken(
                f"{label} does not offer system.run",
                Reason.DENIED,
                f"on {host_name}: enable exec for the node host (openclaw approvals; see docs)",
            )
        return f"{label}: connected, approved, system.run offered"

    async def node_policy(self, host: str) -> str:
        """What the node's exec policy lets clawrelay run (doctor; `status` asks only `node`)."""
        from clawrelay.doctor import node_policy

        return await self._once(("node-policy", host), lambda: node_policy.probe(self, host))

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
        return await self._once(("cli", host, carrier), lambda: self._cli(host, carrier))

    async def _cli(self, host_name: str, carrier_name: str) -> str:
        c = self.carrier(host_name, carrier_name)
        prefix = self.routes.config.hosts[host_name].openclaw
        res = await self._run(c, [*await self.expanded(prefix, c), "--version"])
        if res.exit_code == 127 or (res.exit_code != 0 and b"not found" in res.stderr.lower()):
            raise Broken(
                f"{c.label}: `{' '.join(prefix)}` is not found there",
                Reason.NOT_FOUND,
                f"set hosts.{host_name}.openclaw to its full path there (`command -v openclaw` "
                "in a login shell on that host)",
            )
        if res.exit_code != 0:
            raise Broken(
                f"{c.label}: `{' '.join(prefix)} --version` exited {res.exit_code}: {res.stderr_tail()}",
                Reason.REMOTE_ERROR,
                f"on {host_name}: `{' '.join(prefix)} --version` shows the error; reinstall or update "
                "OpenClaw there (openclaw update)",
            )
        version = res.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"{version[0]} via {c.label}"

    async def reach(self, host: str, carrier: str) -> str:
        """The host answers over this carrier (it is asked for its home folder)."""
        return await self._once(("reach", host, carrier), lambda: self._reach(host, carrier))

    async def _reach(self, host_name: str, carrier_name: str) -> str:
        c = self.carrier(host_name, carrier_name)
        return f"{c.label} answers (home {await self._home(c)})"

    async def workspace(self, host: str, carrier: str) -> str:
        return await self._once(("workspace", host, carrier), lambda: self._workspace(host, carrier))

    async def _workspace(self, host_name: str, carrier_name: str) -> str:
        from clawrelay.carriers.base import under_home

        c = self.carrier(host_name, carrier_name)
        ws = self.routes.config.hosts[host_name].workspace
        path = under_home(ws, await self._home(c)) if ws.startswith("~") else ws
        memory = f"{path.rstrip('/')}/memory"
        if (await self._run(c, ["test", "-d", path])).exit_code != 0:
            raise Broken(
                f"{c.label}: workspace {path} does not exist",
                Reason.NOT_FOUND,
                f"on {host_name}: mkdir -p {path}",
            )
        if (await self._run(c, ["test", "-d", memory])).exit_code == 0:
            if (await self._run(c, ["test", "-w", memory])).exit_code != 0:
                raise Broken(
                    f"{c.label}: {memory} is not writable",
                    Reason.IO_ERROR,
                    f"on {host_name}: chmod u+w {memory}",
                )
            return f"{memory} writable via {c.label}"
        if (await self._run(c, ["test", "-w", path])).exit_code != 0:
            raise Broken(
                f"{c.label}: workspace {path} is not writable",
                Reason.IO_ERROR,
                f"on {host_name}: chmod u+w {path}",
            )
        return f"{path} writable (memory/ is created with the first entry) via {c.label}"

    async def _home(self, c: Carrier) -> str:
        try:
            return await c.home()
        except ClawrelayError as e:
            raise self.broken(e, c) from None

    async def _run(self, c: Carrier, argv: list[str]):  # type: ignore[no-untyped-def]
        try:
            return await c.run(argv, timeout=self.timeout)
        except ClawrelayError as e:
            raise self.broken(e, c) from None

    async def expanded(self, argv: list[str], c: Carrier) -> list[str]:
        """`argv` with `~/…` as that host's home: no shell there expands it in a quoted argv."""
        from clawrelay.transports.remote_cli import expand_home

        try:
            return await expand_home(argv, c)
        except ClawrelayError as e:
            raise self.broken(e, c) from None

    def broken(self, e: ClawrelayError, c: Carrier) -> Broken:
        return carrier_broken(e, c, self._host_of.get(id(c), "HOST"), self.routes.config)

    # -- telegram and commands ------------------------------------------------------------------

    async def telegram(self, chat_id: int | str) -> str:
        return await self._once(("telegram", str(chat_id)), lambda: self._telegram(chat_id))

    async def _telegram(self, chat_id: int | str) -> str:
        from clawrelay.transports.telegram.transport import probe

        bot = self.routes.config.telegram
        assert bot is not None  # config.refs guarantees it for a telegram step
        try:
            return await probe(bot, chat_id, self.timeout)
        except ConfigError as e:
            raise Broken(e.message, Reason.CONFIG, telegram_config_fix(e, bot)) from None
        except TransportError as e:
            raise Broken(e.message, e.reason, telegram_fix(e.reason, bot)) from None


def command(argv0: str) -> str:
    path = Path(argv0).expanduser()
    found = shutil.which(argv0) if "/" not in argv0 else (str(path) if path.is_file() else None)
    if found is None:
        raise Broken(
            f"{argv0} is not found (PATH, or that path)",
            Reason.NOT_FOUND,
            "install it, or give its full path as argv[0]",
        )
    return f"{found} found"
