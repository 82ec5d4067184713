"""What a node's exec policy lets clawrelay run, asked of the node, and its refusals as one line.

Node hosts with a locked-down exec policy (OpenClaw's `security: allowlist`, `ask: on-miss`) run
only what their allowlist names, by the program's resolved path. The node itself tells that path
without running anything (`system.run.prepare`), so a refusal names the exact `openclaw approvals
allowlist add --node … /resolved/program` that allows it, and doctor can list every entry clawrelay
needs before anything is sent. A policy that denies outright is permanent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from clawrelay.carriers.node_helper import HELPER_PATTERN, helper_script, is_helper, no_helper
from clawrelay.carriers.proxy import shell_wrap
from clawrelay.carriers.result import RunResult
from clawrelay.errors import TransportError
from clawrelay.ids import new_id
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.carriers.node import NodeCarrier
    from clawrelay.openclaw import GatewayError

# programs a node's allowlist never lets through by their own entry when they carry a command
WRAPPERS = frozenset({"env", "sh", "bash", "dash", "zsh", "ksh", "fish", "sudo", "doas"})


def node_error(err: GatewayError) -> tuple[str, str] | None:
    """(code, message) the node itself gave, when the gateway passed one on."""
    node = (err.details or {}).get("nodeError")
    if isinstance(node, dict):
        return str(node.get("code") or ""), str(node.get("message") or "")
    return None


def asks(err: GatewayError) -> bool:
    """The node's policy wants an approval for this run (not a refusal for good)."""
    denied = node_error(err)
    return bool(denied and denied[0] == "SYSTEM_RUN_DENIED" and "approval required" in denied[1])


def is_denied(err: GatewayError) -> bool:
    """The node's policy does not let this run go unasked: it wants an approval, or refuses it."""
    return "SYSTEM_RUN_DENIED" in f"{node_error(err)} {err}"


async def prepare_run(c: NodeCarrier, argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """The node's plan for `argv`, run nowhere (`system.run.prepare`): the program's resolved
    path, what an allowlist entry for it must say, and the node's policy for our agent."""
    client = await c.client(timeout)
    node_id = await c.node_id(client, timeout)
    answer = await client.request(
        "node.invoke",
        {
            "nodeId": node_id,
            "command": "system.run.prepare",
            "timeoutMs": int(timeout * 1000),
            "params": {"command": list(argv), "rawCommand": None, "agentId": c.ref.agent},
            "idempotencyKey": new_id(),
        },
        timeout=timeout,
    )
    payload = answer.get("payload")
    return payload if isinstance(payload, dict) else {}


async def exec_policy(c: NodeCarrier, timeout: float) -> tuple[str, str]:
    """(security, ask) of the node's exec policy for our agent, as the node reports it."""
    plan = await prepare_run(c, ["test", "-e", "/"], timeout)
    effective = plan.get("execPolicy") or (plan.get("plan") or {}).get("policySnapshot") or {}
    return str(effective.get("security") or "full"), str(effective.get("ask") or "off")


async def run_if_allowed(
    c: NodeCarrier, argv: Sequence[str], *, timeout: float, helper: bool = False
) -> RunResult | None:
    """`argv` run as the carrier's `run` would run it (or as a helper command), or None where the
    node's policy would want an approval or refuse it: nobody is asked (doctor's probe)."""
    end = time.monotonic() + timeout
    if helper:
        command = ["sh", await c.node_helper.path(), helper_script()[0], *argv]
    else:
        command = shell_wrap(argv, strip=c.strip_proxy)
    return await c.run_unasked(command, argv, end)


async def allowlist_pattern(c: NodeCarrier, argv: Sequence[str], timeout: float = 5.0) -> str | None:
    """The allowlist entry that lets `argv`'s program run on the node: its resolved real path,
    as the node itself gives it (the program, not a wrapper: a script run by `sh` is the
    script). None when the node cannot tell (no such program there)."""
    from clawrelay.errors import ClawrelayError

    try:
        plan = await prepare_run(c, argv, max(0.5, timeout))
    except ClawrelayError:
        return None
    for entry in (plan.get("allowAlwaysCoverage") or {}).get("patterns") or []:
        if isinstance(entry, dict) and entry.get("pattern"):
            return str(entry["pattern"])
    first = ((plan.get("plan") or {}).get("argv") or [None])[0]
    return str(first) if isinstance(first, str) and first.startswith("/") else None


async def allowlist_line(c: NodeCarrier, argv: Sequence[str], end: float) -> str:
    """The exact `openclaw approvals allowlist add` that lets `argv` run there."""
    if is_helper(argv):
        pattern: str | None = HELPER_PATTERN  # clawrelay's helper: the script is the program
    elif PurePosixPath(argv[0]).name in WRAPPERS:
        return (
            f"nothing: a node judges `{PurePosixPath(argv[0]).name}` with arguments as a program "
            "of its own, which no allowlist entry lets through; run the program itself"
        )
    else:
        pattern = await allowlist_pattern(c, argv, end - time.monotonic())
    return c.allowlist_add(pattern or f"<path of {argv[0]} there>")


def as_fix(line: str) -> str | None:
    """An `allowlist_line` as an error's `fix`: only when it is a command to run."""
    return line if line.startswith("openclaw approvals ") else None


async def refusal(c: NodeCarrier, err: GatewayError, argv: Sequence[str], end: float) -> TransportError:
    """The gateway's or the node's no, as one line that says what to do about it."""
    node = node_error(err)
    why = node[1] if node else str(err)
    if (node and node[0] == "SYSTEM_RUN_DENIED") or "SYSTEM_RUN_DENIED" in why:
        why = " ".join(why.replace("SYSTEM_RUN_DENIED: ", "").split("\n", 1)[0].split())
        if is_helper(argv) and "script operand" in why:  # the helper is not there to approve
            return no_helper(c, argv[1])
        if "env assignment rejected" in why or "environment override rejected" in why:
            return TransportError(
                f"{c.label} refused the command ({why}): OpenClaw never lets a command set "
                "that variable on a node, whatever its allowlist",
                reason=Reason.DENIED,
            )
        line = await allowlist_line(c, argv, end)
        return TransportError(
            f"{c.label} refused the command ({why}); allow its program on the node (on the "
            f"gateway's machine): {line}",
            reason=Reason.DENIED,
            fix=as_fix(line),
        )
    if err.reason == Reason.UNAVAILABLE and "not connected" in str(err).lower():
        return TransportError(
            f"{c.label}: the node is not connected to its gateway",
            reason=Reason.NODE_OFFLINE,
            retryable=True,
        )
    return err
