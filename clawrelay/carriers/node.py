"""The node carrier: `node.invoke` `system.run` through the gateway the host is paired to.

The argv travels as a JSON list: by default the three elements of `sh -c 'unset PROXIES…; exec
ARGV'`, each element of ARGV quoted as one literal word, so message text is one argument of the
program whatever it contains (`carriers.proxy`: a node refuses proxy variables as `env`, and this
is the form a locked-down node's allowlist judges by the program). The node enforces the time
limit itself (exit 124, timedOut) and clawrelay waits a little longer for the answer.

What a node may ask of a run has a module each: `carriers.node_approval`, the two-phase flow for
a node that wants a run approved; `carriers.node_policy`, what its exec policy allows and a
refusal as the one `openclaw approvals allowlist add` line that fixes it; `carriers.node_helper`,
clawrelay's script on the node for its own multi-step work there (memory entries, bundles, links).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawrelay.carriers.base import GRACE_S, ask_home, under_home
from clawrelay.carriers.node_approval import approved_run
from clawrelay.carriers.node_helper import NodeHelper
from clawrelay.carriers.node_policy import asks, is_denied, refusal
from clawrelay.carriers.proxy import shell_wrap, wrap
from clawrelay.carriers.result import TIMEOUT_EXIT, RunResult
from clawrelay.config.model import Gateway, NodeRef
from clawrelay.errors import TransportError
from clawrelay.ids import new_id
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.openclaw import GatewayClient, GatewayPool

_NODE_ID = re.compile(r"^[0-9a-f]{32,}$")
Notice = Callable[[str], None]
SHELL_LIMIT = 96 * 1024  # a `sh -c` line longer than this goes as separate argv elements instead


def _stderr_notice(text: str) -> None:
    print(f"clawrelay: {text}", file=sys.stderr, flush=True)


def _system_run(command: list[str], agent: str) -> dict[str, Any]:
    """system.run's params. suppressNotifyOnExit: the node host would otherwise queue an "exec
    completion" event and wake its agent for a turn (a model call) after each of our runs."""
    return {"command": command, "agentId": agent, "suppressNotifyOnExit": True}


class NodeCarrier:
    name = "node"

    def __init__(
        self,
        gateways: GatewayPool,
        gateway_name: str,
        gateway: Gateway,
        ref: NodeRef,
        *,
        strip_proxy: bool = True,
        notice: Notice = _stderr_notice,
    ) -> None:
        self.gateways = gateways
        self.gateway_name = gateway_name
        self.gateway = gateway
        self.ref = ref
        self.strip_proxy = strip_proxy
        self.notice = notice
        self.label = f"node {ref.id} on gateway {gateway_name}"
        self.selector = shlex.quote(ref.id)  # how `openclaw … --node` names it
        self._node_id: str | None = None
        self._home: str | None = None
        self.node_helper = NodeHelper(self)  # clawrelay's script there

    async def client(self, timeout: float, *, approvals: bool = False) -> GatewayClient:
        from clawrelay.openclaw.client import APPROVALS, READ, WRITE

        scopes = (READ, WRITE, APPROVALS) if approvals else (READ, WRITE)
        return await self.gateways.get(
            self.gateway_name,
            self.gateway.url,
            self.gateway.resolve_token(),
            scopes=scopes,
            timeout=max(0.1, timeout),
        )

    async def node_id(self, client: GatewayClient, timeout: float) -> str:
        """The node's id: routes.yaml may name it by id or by its display name."""
        if self._node_id is None:
            if _NODE_ID.match(self.ref.id):
                self._node_id = self.ref.id
            else:
                from clawrelay.openclaw.nodes import known, matching

                nodes = (await client.request("node.list", {}, timeout=max(0.1, timeout))).get("nodes") or []
                found = matching(nodes, self.ref.id)
                if not found:
                    raise TransportError(
                        f"{self.label}: no such node on the gateway (known: {known(nodes)})",
                        reason=Reason.NOT_FOUND,
                    )
                self._node_id = str(found[0]["nodeId"])
        return self._node_id

    def allowlist_add(self, pattern: str) -> str:
        """The command that lets `pattern` run on this node unasked (on the gateway's machine)."""
        return f"openclaw approvals allowlist add --node {self.selector} {shlex.quote(pattern)}"

    async def home(self) -> str:
        """The node user's home (`printenv HOME` there: a node offers the home folder without a
        run, `fs.listDir`, to operator.admin only)."""
        if self._home is None:
            self._home = await ask_home(self)
        return self._home

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        if stdin is not None:
            raise TransportError(f"{self.label}: a node run takes no stdin", reason=Reason.NOT_SUPPORTED)
        short = sum(len(a) for a in argv) < SHELL_LIMIT  # one `sh -c` line has the limit of one element
        command = shell_wrap(argv, strip=self.strip_proxy) if short else wrap(argv, strip=self.strip_proxy)
        res = await self.system_run(
            argv, command, wrap(argv, strip=self.strip_proxy), timeout=timeout, cwd=cwd, on_spawn=on_spawn
        )
        if res.exit_code == 127 and re.search(
            rf"\bexec: {re.escape(argv[0])}: not found", res.stderr.decode("utf-8", "replace")
        ):
            raise TransportError(f"{self.label}: {argv[0]}: command not found", reason=Reason.NOT_FOUND)
        return res

    async def system_run(
        self,
        argv: Sequence[str],
        command: list[str],
        approvable: list[str],
        *,
        timeout: float,
        cwd: str | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        """`command` on the node; `approvable`, the same run in a form OpenClaw can bind an
        approval to, when the node asks for one. `argv` is what the user asked for (messages)."""
        from clawrelay.openclaw import GatewayError

        t0 = time.monotonic()
        end = t0 + timeout
        client = await self.client(timeout)
        node_id = await self.node_id(client, end - time.monotonic())
        params = _system_run(command, self.ref.agent)
        if cwd:
            params["cwd"] = under_home(cwd, await self.home()) if cwd.startswith("~") else cwd
        try:
            payload = await self.invoke(client, node_id, params, end, on_spawn)
        except GatewayError as e:
            if not asks(e):
                raise await refusal(self, e, argv, end) from e
            approving = {**params, "command": approvable}
            payload = await approved_run(self, argv, node_id, approving, end, on_spawn)
        return self._result(payload, argv, t0)

    async def run_unasked(self, command: list[str], argv: Sequence[str], end: float) -> RunResult | None:
        """`command` on the node, or None where its policy would want an approval or refuse it:
        nobody is asked (doctor's probes, writing the helper). `argv` is what a refusal names."""
        from clawrelay.openclaw import GatewayError

        t0 = time.monotonic()
        client = await self.client(end - t0)
        node_id = await self.node_id(client, end - time.monotonic())
        try:
            payload = await self.invoke(client, node_id, _system_run(command, self.ref.agent), end, None)
        except GatewayError as e:
            if is_denied(e):
                return None
            raise await refusal(self, e, argv, end) from e
        return self._result(payload, command, t0)

    async def invoke(
        self,
        client: GatewayClient,
        node_id: str,
        params: dict[str, Any],
        end: float,
        on_spawn: Callable[[], None] | None,
    ) -> dict[str, Any]:
        left = max(0.1, end - time.monotonic())
        call = await client.start(
            "node.invoke",
            {
                "nodeId": node_id,
                "command": "system.run",
                "params": {**params, "timeoutMs": int(left * 1000)},
                "timeoutMs": int((left + GRACE_S) * 1000),
                "idempotencyKey": new_id(),
            },
        )
        if on_spawn is not None:
            on_spawn()
        try:
            async with asyncio.timeout(left + GRACE_S):
                return await call.final
        except TimeoutError:  # it left: a run cut at its limit, whatever became of it there
            client.forget(call)
            return {"timedOut": True, "stderr": f"no answer from the node within {left + GRACE_S:.1f}s"}

    def _result(self, payload: dict[str, Any], argv: Sequence[str], t0: float) -> RunResult:
        elapsed = int((time.monotonic() - t0) * 1000)
        inner = payload.get("payload")
        out: dict[str, Any] = inner if isinstance(inner, dict) else payload
        stdout = str(out.get("stdout") or "").encode()
        stderr = str(out.get("stderr") or "").encode()
        if out.get("timedOut"):
            return RunResult(TIMEOUT_EXIT, True, stdout, stderr, elapsed)
        code = out.get("exitCode")
        if code is None:
            error = str(out.get("error") or "no exit code")
            if "ENOENT" in error:
                raise TransportError(f"{self.label}: {argv[0]}: command not found", reason=Reason.NOT_FOUND)
            raise TransportError(f"{self.label}: {error}", reason=Reason.REMOTE_ERROR)
        return RunResult(int(code), False, stdout, stderr, elapsed)

    # -- clawrelay's helper there (carriers.node_helper), for memory_file and sync ---------------

    async def helper(
        self, command: str, args: Sequence[str], *, timeout: float, on_spawn: Callable[[], None] | None = None
    ) -> RunResult:
        return await self.node_helper.run(command, args, timeout=timeout, on_spawn=on_spawn)

    async def put(self, local: Path, remote: str, *, timeout: float) -> str:
        return await self.node_helper.put(local, remote, timeout=timeout)

    async def drop(self, remote: str, *, timeout: float = 30.0) -> None:
        await self.node_helper.drop(remote, timeout=timeout)
