"""The node carrier: `node.invoke` `system.run` through the gateway the host is paired to.

The argv travels as a JSON list and the node runs it without a shell, so message text is one
argv element whatever it contains. Proxy variables are shed with `env -u` inside the argv:
recent gateways refuse them when passed as `env`. The node enforces the time limit itself
(exit 124, timedOut) and clawrelay waits a little longer for the answer.

A node whose exec policy asks for approval gets the two-phase approval flow (PROTOCOL.md): the
run is prepared, an approval requested, and then either a human decides (`approve: ask`, the
default: clawrelay prints the `openclaw approvals resolve` command and waits within the time
limit) or, where the routes file says `approve: allow-once`, clawrelay allows this one exact
argv itself with the operator.approvals scope. A policy that denies outright is permanent.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clawrelay.carriers.base import GRACE_S, ask_home, under_home
from clawrelay.carriers.proxy import wrap
from clawrelay.carriers.result import TIMEOUT_EXIT, RunResult
from clawrelay.config.model import Gateway, NodeRef
from clawrelay.errors import TransportError
from clawrelay.ids import new_id
from clawrelay.reasons import Reason
from clawrelay.secrets import scrub

if TYPE_CHECKING:
    from clawrelay.openclaw import GatewayClient, GatewayError, GatewayPool

_NODE_ID = re.compile(r"^[0-9a-f]{32,}$")
Notice = Callable[[str], None]


def _stderr_notice(text: str) -> None:
    print(f"clawrelay: {text}", file=sys.stderr, flush=True)


def node_error(err: GatewayError) -> tuple[str, str] | None:
    """(code, message) the node itself gave, when the gateway passed one on."""
    node = (err.details or {}).get("nodeError")
    if isinstance(node, dict):
        return str(node.get("code") or ""), str(node.get("message") or "")
    return None


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
        self._node_id: str | None = None
        self._home: str | None = None

    async def _client(self, timeout: float, *, approvals: bool = False) -> GatewayClient:
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

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        from clawrelay.openclaw import GatewayError

        if stdin is not None:
            raise TransportError(f"{self.label}: a node run takes no stdin", reason=Reason.NOT_SUPPORTED)
        t0 = time.monotonic()
        end = t0 + timeout
        client = await self._client(timeout)
        node_id = await self.node_id(client, end - time.monotonic())
        # suppressNotifyOnExit: the node host would otherwise queue an "exec completion" event and
        # wake its agent for a turn (a model call) after each of our runs
        params: dict[str, Any] = {"command": wrap(argv, strip=self.strip_proxy), "agentId": self.ref.agent,
                                  "suppressNotifyOnExit": True}
        if cwd:
            params["cwd"] = under_home(cwd, await self.home()) if cwd.startswith("~") else cwd
        try:
            payload = await self._invoke(client, node_id, params, end, on_spawn)
        except GatewayError as e:
            denied = node_error(e)
            if denied and denied[0] == "SYSTEM_RUN_DENIED" and "approval required" in denied[1]:
                payload = await self._approved_run(node_id, params, end, on_spawn)
            else:
                raise self._translate(e) from e
        return self._result(payload, argv, t0)

    async def _invoke(
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

    async def _approved_run(
        self, node_id: str, params: dict[str, Any], end: float, on_spawn: Callable[[], None] | None
    ) -> dict[str, Any]:
        """The node asks for approval: prepare, request, decide (or wait for a human), then run."""
        from clawrelay.openclaw import GatewayError

        auto = self.ref.approve == "allow-once"
        try:
            # exec.approval.request needs operator.approvals as well, whoever decides
            client = await self._client(end - time.monotonic(), approvals=True)
            left = max(0.1, end - time.monotonic())
            prepared = await client.request(
                "node.invoke",
                {
                    "nodeId": node_id,
                    "command": "system.run.prepare",
                    "params": {
                        "command": params["command"],
                        "rawCommand": None,
                        "agentId": self.ref.agent,
                        **({"cwd": params["cwd"]} if "cwd" in params else {}),
                    },
                    "timeoutMs": int(left * 1000),
                    "idempotencyKey": new_id(),
                },
                timeout=left,
            )
            plan = (prepared.get("payload") or {}).get("plan") or {}
            approval_id = new_id()
            left = max(0.1, end - time.monotonic())
            pending = await client.start(
                "exec.approval.request",
                {
                    "id": approval_id,
                    "command": plan.get("commandText"),
                    "commandArgv": plan.get("argv"),
                    "systemRunPlan": plan,
                    "nodeId": node_id,
                    "host": "node",
                    "agentId": self.ref.agent,
                    "cwd": plan.get("cwd"),
                    "twoPhase": True,
                    "timeoutMs": int(left * 1000),
                    "requireDeliveryRoute": False,
                },
            )
            async with asyncio.timeout(left):
                await pending.ack
                if auto:
                    await client.request(
                        "exec.approval.resolve",
                        {"id": approval_id, "decision": "allow-once"},
                        timeout=max(0.1, end - time.monotonic()),
                    )
                else:
                    asks = f"{self.label} asks for approval of `{plan.get('commandText')}`"
                    self.notice(f"{scrub(asks)}; on the gateway's machine run: "
                                f"openclaw approvals resolve {approval_id} allow-once")
                decision = (await pending.final).get("decision")
        except TimeoutError:
            raise TransportError(
                f"{self.label}: the node asks for approval and none came in time (allow the "
                "command on the node: openclaw approvals allowlist add --node "
                f"{self.ref.id} <program>, or set `approve: allow-once` on this host's node)",
                reason=Reason.APPROVAL_TIMEOUT,
            ) from None
        except GatewayError as e:
            if e.reason in (Reason.MISSING_SCOPE, Reason.PAIRING_REQUIRED):
                raise TransportError(
                    f"{self.label}: the node asks for approval and clawrelay may not approve "
                    f"({e}); allow the program on the node: openclaw approvals allowlist add "
                    f"--node {self.ref.id} <program>",
                    reason=Reason.DENIED,
                ) from e
            raise self._translate(e) from e
        if decision not in ("allow-once", "allow-always"):
            raise TransportError(
                f"{self.label}: approval {decision or 'not given'} for `{plan.get('commandText')}`",
                reason=Reason.DENIED,
            )
        params = {
            **params,
            "command": plan.get("argv") or params["command"],
            "rawCommand": plan.get("commandText"),
            "runId": approval_id,
            "approved": True,
            "approvalDecision": decision,
            "systemRunPlan": plan,
        }
        if plan.get("cwd"):
            params["cwd"] = plan["cwd"]
        try:
            return await self._invoke(client, node_id, params, end, on_spawn)
        except GatewayError as e:
            raise self._translate(e) from e

    def _translate(self, err: GatewayError) -> TransportError:
        node = node_error(err)
        if (node and node[0] == "SYSTEM_RUN_DENIED") or "SYSTEM_RUN_DENIED" in str(err):
            why = node[1] if node else str(err)
            return TransportError(
                f"{self.label} refused the command ({why}); allow it on the node: "
                f"openclaw approvals allowlist add --node {self.ref.id} <program> "
                "(or `openclaw approvals get --node …` to see its policy)",
                reason=Reason.DENIED,
            )
        if err.reason == Reason.UNAVAILABLE and "not connected" in str(err).lower():
            return TransportError(
                f"{self.label}: the node is not connected to its gateway",
                reason=Reason.NODE_OFFLINE,
                retryable=True,
            )
        return err

    def _result(self, payload: dict[str, Any], argv: Sequence[str], t0: float) -> RunResult:
        elapsed = int((time.monotonic() - t0) * 1000)
        out = payload.get("payload") if isinstance(payload.get("payload"), dict) else payload
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

    async def home(self) -> str:
        if self._home is None:
            self._home = await ask_home(self)
        return self._home
