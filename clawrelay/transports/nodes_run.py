"""nodes_run: on the target's host, through the gateway where it is paired as a node, its own
`openclaw system event --mode now`, which reaches that machine's gateway with that machine's
config. The event wakes the session at once (a heartbeat turn with the text as a system event).

Confirmed by exit 0 from the node. The CLI has no idempotency key: a timeout after the command
left is ambiguous, and the router never retries it blindly.
"""

from __future__ import annotations

from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.remote_cli import run_openclaw


class NodesRun:
    name = "nodes_run"

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        session = ctx.routes.target(ctx.target).session
        res = await run_openclaw(
            ctx, ["system", "event", "--mode", "now", "--session-key", session, "--text", env.as_text()]
        )
        if res.timed_out:
            return StepResult.ambiguous(
                "timeout", f"openclaw system event still running after {res.elapsed_ms} ms"
            )
        if res.exit_code == 0:
            return StepResult.delivered(f"system event into {session} ({res.elapsed_ms} ms)")
        detail = f"openclaw system event exited {res.exit_code}" + (
            f": {t}" if (t := res.stderr_tail()) else ""
        )
        if res.exit_code in (126, 127):
            return StepResult.failed("not_found", f"{detail} (set the host's `openclaw:` to the CLI's path)")
        return StepResult.failed("remote_error", detail, retryable=True)
