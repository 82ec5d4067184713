"""A node that asks for approval: OpenClaw's two-phase approval flow (PROTOCOL.md).

The run goes with the argv as `env -u … -- ARGV`, the form OpenClaw can bind an approval to: it is
prepared, an approval requested, and then either a human decides (`approve: ask`, the default:
clawrelay prints the `openclaw approvals resolve` command and waits within the time limit) or,
where the routes file says `approve: allow-once`, clawrelay allows this one exact argv itself with
the operator.approvals scope. Where nobody is there to approve, the run is refused at once with
the allowlist line that lets it run unasked (`carriers.node_policy`).
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from clawrelay.carriers.node_helper import is_helper, no_helper
from clawrelay.carriers.node_policy import allowlist_line, as_fix, node_error, prepare_run, refusal
from clawrelay.errors import TransportError
from clawrelay.ids import new_id
from clawrelay.reasons import Reason
from clawrelay.secrets import scrub

if TYPE_CHECKING:
    from clawrelay.carriers.node import NodeCarrier

# False where nobody is there to approve (doctor, status): a run the node wants approved is then
# refused at once, with its allowlist line, instead of waiting for a human
ASK_HUMANS: ContextVar[bool] = ContextVar("clawrelay_node_ask_humans", default=True)


async def approved_run(
    c: NodeCarrier,
    argv: Sequence[str],
    node_id: str,
    params: dict[str, Any],
    end: float,
    on_spawn: Callable[[], None] | None,
) -> dict[str, Any]:
    """The node asks for approval: prepare, request, decide (or wait for a human), then run."""
    from clawrelay.openclaw import GatewayError

    auto = c.ref.approve == "allow-once"
    await _preflight(c, argv, end)
    if not auto and not ASK_HUMANS.get():
        line = await allowlist_line(c, argv, end + 3)
        raise TransportError(
            f"{c.label}: the node wants an approval for `{scrub(shlex.join(argv)[:200])}` (nobody "
            f"is asked from here); allow its program there: {line}",
            reason=Reason.DENIED,
            fix=as_fix(line),
        )
    try:
        # exec.approval.request needs operator.approvals as well, whoever decides
        client = await c.client(end - time.monotonic(), approvals=True)
        left = max(0.1, end - time.monotonic())
        answer = await client.request(
            "node.invoke",
            {
                "nodeId": node_id,
                "command": "system.run.prepare",
                "params": {
                    "command": params["command"],
                    "rawCommand": None,
                    "agentId": c.ref.agent,
                    **({"cwd": params["cwd"]} if "cwd" in params else {}),
                },
                "timeoutMs": int(left * 1000),
                "idempotencyKey": new_id(),
            },
            timeout=left,
        )
        plan = (answer.get("payload") or {}).get("plan") or {}
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
                "agentId": c.ref.agent,
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
                asks = f"{c.label} asks for approval of `{plan.get('commandText')}`"
                c.notice(
                    f"{scrub(asks)}; on the gateway's machine run: "
                    f"openclaw approvals resolve {approval_id} allow-once"
                )
            decision = (await pending.final).get("decision")
    except TimeoutError:
        line = await allowlist_line(c, argv, end + 3)
        raise TransportError(
            f"{c.label}: the node asks for approval and none came in time (allow the "
            f"command on the node: {line}, or set `approve: allow-once` on this host's node)",
            reason=Reason.APPROVAL_TIMEOUT,
            fix=as_fix(line),
        ) from None
    except GatewayError as e:
        if e.reason in (Reason.MISSING_SCOPE, Reason.PAIRING_REQUIRED):
            line = await allowlist_line(c, argv, end + 3)
            raise TransportError(
                f"{c.label}: the node asks for approval and clawrelay may not approve "
                f"({e}); allow the program on the node: {line}",
                reason=Reason.DENIED,
                fix=as_fix(line),
            ) from e
        raise await refusal(c, e, argv, end + 3) from e
    if decision not in ("allow-once", "allow-always"):
        line = await allowlist_line(c, argv, time.monotonic() + 5)
        raise TransportError(
            f"{c.label}: approval {decision or 'not given'} for "
            f"`{scrub(str(plan.get('commandText')))}`; to let it run unasked: {line}",
            reason=Reason.DENIED,
            fix=as_fix(line),
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
        return await c.invoke(client, node_id, params, end, on_spawn)
    except GatewayError as e:
        raise await refusal(c, e, argv, end + 3) from e


async def _preflight(c: NodeCarrier, argv: Sequence[str], end: float) -> None:
    """Before anyone is asked to approve `argv`: what the node can tell at once (the program is
    not there, nor clawrelay's helper)."""
    from clawrelay.openclaw import GatewayError

    try:
        await prepare_run(c, argv, max(0.5, min(5.0, end - time.monotonic())))
    except GatewayError as e:
        why = (node_error(e) or ("", str(e)))[1]
        if is_helper(argv) and "script operand" in why:
            raise no_helper(c, argv[1]) from None
        if "stable executable path" in why:
            raise TransportError(
                f"{c.label}: {argv[0]}: command not found", reason=Reason.NOT_FOUND
            ) from None
