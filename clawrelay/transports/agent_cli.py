"""agent_cli: `openclaw agent --session-key K -m TEXT --json` on the target's host.

The CLI goes through that machine's own gateway. It has known ways to lie: some versions, when
the gateway call fails, quietly run an embedded local agent instead (a reply that no session of
the target ever saw), and it may print its result and then not exit. So: a hard deadline that
kills it (its carrier's), its JSON read even when it had to be killed, and a run that went
embedded recorded as failed `embedded_fallback`, never delivered.
"""

from __future__ import annotations

import json
import re
from typing import Any

from clawrelay.carriers.base import GRACE_S
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.reasons import Reason
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.remote_cli import run_openclaw
from clawrelay.transports.specs.agent_cli import SPEC

# What a CLI that gave up on its gateway says before running the agent in-process. Narrow on
# purpose: a healthy run's logs may mention "--local" or "embedded" in passing.
_EMBEDDED = re.compile(
    r"fall(?:ing)?\s*back\b[^\n]*\b(?:embedded|local agent)|running (?:an )?embedded agent", re.I
)


def last_json(text: str) -> dict[str, Any] | None:
    """The JSON object the CLI printed (the last one that parses; logs may come before it)."""
    text = text.strip()
    for start in [i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")]:
        try:
            value = json.loads(text[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def judge(result: dict[str, Any] | None, stderr: str) -> StepResult:
    """What the CLI's JSON (and what it said on stderr) really means."""
    if result is None:
        return StepResult.failed(Reason.BAD_OUTPUT, "openclaw agent printed no JSON result", retryable=True)
    if result.get("ok") is False or "error" in result:
        err = result.get("error") or {}
        msg = err.get("message") if isinstance(err, dict) else str(err)
        return StepResult.failed(
            Reason.REMOTE_ERROR, " ".join(str(msg or "openclaw agent failed").split()), retryable=True
        )
    gateway_run = bool(result.get("runId")) and result.get("status") == "ok"
    if not gateway_run or _EMBEDDED.search(stderr):
        why = "its result has no gateway runId" if not gateway_run else "it said so on stderr"
        return StepResult.failed(
            Reason.EMBEDDED_FALLBACK,
            f"openclaw agent ran an embedded local agent instead of "
            f"the gateway's session ({why}); the target never saw it",
        )
    payloads = ((result.get("result") or {}).get("payloads")) or []
    reply = "\n".join(str(p.get("text")) for p in payloads if isinstance(p, dict) and p.get("text")) or None
    return StepResult.delivered(f"run {result['runId']}", reply=reply)


class AgentCli:
    name = SPEC.name
    resend_window = SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        session = ctx.session
        limit = max(1, int(ctx.remaining() - GRACE_S))
        res = await run_openclaw(
            ctx, ["agent", "--session-key", session, "-m", env.as_text(), "--json", "--timeout", str(limit)]
        )
        stdout = res.stdout.decode("utf-8", "replace")
        stderr = res.stderr.decode("utf-8", "replace")
        verdict = judge(last_json(stdout), stderr)
        if res.timed_out:
            if verdict.outcome == "delivered":  # printed its result, then hung: killed, but it ran
                return StepResult.delivered(
                    f"{verdict.detail} (printed its result, then did not exit: killed)", reply=verdict.reply
                )
            return StepResult.ambiguous(
                Reason.TIMEOUT, f"openclaw agent still running after {res.elapsed_ms} ms: killed"
            )
        if res.exit_code in (126, 127) and verdict.reason == Reason.BAD_OUTPUT:
            return StepResult.failed(
                Reason.NOT_FOUND,
                f"openclaw not found on the host (exit {res.exit_code}); "
                "set the host's `openclaw:` to the CLI's path",
            )
        return verdict
