"""A node's exec policy, probed: does it let clawrelay run its programs there unasked?

A node locked down after setup would otherwise refuse clawrelay's programs one at a time, each on
a real message. Doctor asks the node itself about each of them (`printenv` for the home folder,
`test`, git for sync, the host's `openclaw` where a step runs it, and clawrelay's node helper),
writes the helper where it is missing and the node lets clawrelay, and prints at once one
`openclaw approvals allowlist add` per program the node refuses.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from typing import TYPE_CHECKING

from clawrelay.carriers.node import NodeCarrier
from clawrelay.carriers.node_approval import ASK_HUMANS
from clawrelay.carriers.node_helper import HELPER_PATTERN, helper_script, local_helper
from clawrelay.carriers.node_policy import allowlist_pattern, exec_policy, prepare_run, run_if_allowed
from clawrelay.carriers.result import RunResult
from clawrelay.errors import ClawrelayError
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.probes import Probes

HELPER_NAME = "clawrelay's node helper"  # how a refusal names the helper


async def probe(p: Probes, host_name: str) -> str:
    """What the node's policy lets clawrelay run; a ClawrelayError with every allowlist entry it
    needs as its `fix`."""
    ASK_HUMANS.set(False)  # nobody approves a probe
    await p.node(host_name)
    c = p.carrier(host_name, "node")
    assert isinstance(c, NodeCarrier)
    label = f"node {c.ref.id} on {c.ref.gateway}"
    try:
        security, ask = await exec_policy(c, p.timeout)
    except ClawrelayError as e:
        raise p.with_fix(e, c) from None
    policy = f"exec policy security {security}, ask {ask}"
    see = f"openclaw approvals get --node {c.selector} shows it"
    if security == "deny":
        raise ClawrelayError(
            f"{label}: its {policy}: nothing runs there",
            reason=Reason.DENIED,
            fix=f"{see}; set its security to allowlist (openclaw approvals set --node {c.selector} "
            "--file …), then run doctor again for the programs to allow",
        )
    if ask == "always":
        raise ClawrelayError(
            f"{label}: its {policy}: a human approves every command",
            reason=Reason.DENIED,
            fix=f"{see}; set its ask to on-miss (openclaw approvals set --node {c.selector} "
            "--file …), then run doctor again for the programs to allow",
        )
    refused = {} if (security, ask) == ("full", "off") else await _refused_programs(p, c, host_name)
    copy = await _helper(p, c, refused)
    if not refused and copy is None:
        return f"{policy}: clawrelay's programs run there unasked"
    lines = [c.allowlist_add(pattern) for pattern in refused.values()] + ([copy] if copy else [])
    what = (
        [f"does not let clawrelay run {', '.join(refused)} unasked (allow them on the gateway's machine)"]
        if refused
        else []
    )
    if copy:
        what.append(
            f"has no clawrelay node helper at {HELPER_PATTERN} (memory_file, sync bundles and "
            "--link run it) and lets nothing write it (copy it there by hand)"
        )
    raise ClawrelayError(
        f"{label}: its {policy} {'; and '.join(what)}", reason=Reason.DENIED, fix="\n".join(lines)
    )


async def _refused_programs(p: Probes, c: NodeCarrier, host_name: str) -> dict[str, str]:
    """The programs clawrelay runs there that the node refuses unasked: each one's allowlist entry."""
    refused: dict[str, str] = {}
    programs = {"printenv": ["printenv", "HOME"], "test": ["test", "-e", "/"], "git": ["git", "--version"]}
    config = p.routes.config
    if any(
        s.transport in ("nodes_run", "agent_cli")
        for t, target in config.targets.items()
        if target.host == host_name
        for s in p.routes.plan(t)
    ):
        programs["openclaw"] = [*config.hosts[host_name].openclaw, "--version"]
    for name, argv in programs.items():
        if "~" in " ".join(argv) and "printenv" not in refused:
            argv = await p.expanded(argv, c)
        if await _allowed(p, c, argv) is None:
            pattern = await allowlist_pattern(c, argv, p.timeout)
            if pattern:  # else not there at all (no git): nothing an allowlist changes
                refused[name] = pattern
    return refused


async def _helper(p: Probes, c: NodeCarrier, refused: dict[str, str]) -> str | None:
    """Whether clawrelay's helper runs there unasked (else its entry joins `refused`) and is there
    in this version, written where it is not; None, or the copy to make where the node lets
    nothing write it."""
    if "printenv" in refused:  # no home folder known: whether the helper is there waits for the next run
        refused[HELPER_NAME] = HELPER_PATTERN
        return None
    helper = await c.node_helper.path()
    ran = await _allowed(p, c, ["version"], helper=True)
    current = ran is not None and ran.exit_code == 0
    if ran is None:  # not allowed to run: is it there, this version? (the node hashes it for us)
        refused[HELPER_NAME] = HELPER_PATTERN
        version, text = helper_script()
        try:
            plan = await prepare_run(c, ["sh", helper, version, "version"], p.timeout)
        except ClawrelayError:
            plan = {}  # "approval requires an existing script operand": not there
        operand = (plan.get("plan") or {}).get("mutableFileOperand") or {}
        current = operand.get("sha256") == hashlib.sha256(text.encode()).hexdigest()
    if current:
        return None
    try:  # missing or another version: write it if the node lets us
        await c.node_helper.install(time.monotonic() + p.timeout)
    except ClawrelayError:
        return f"copy {shlex.quote(str(local_helper()))} to {c.selector}:{HELPER_PATTERN}"
    return None


async def _allowed(p: Probes, c: NodeCarrier, argv: list[str], helper: bool = False) -> RunResult | None:
    try:
        return await run_if_allowed(c, argv, timeout=p.timeout, helper=helper)
    except ClawrelayError as e:
        raise p.with_fix(e, c) from None
