"""nodes_run: on the target's host, through the gateway where it is paired as a node, its own
`openclaw system event --mode now`, which reaches that machine's gateway with that machine's
config. The event wakes the session at once (a heartbeat turn with the text as a system event).

Confirmed by exit 0 from the node. The CLI has no idempotency key: a timeout after the command
left is ambiguous, and the router never retries it blindly.

A node with an exec allowlist runs it unasked once the CLI's resolved path is on the allowlist
(`clawrelay doctor` prints the exact `openclaw approvals allowlist add --node …`); until then the
node asks for an approval, which a delivery waits for only within the step's timeout.
"""

from __future__ import annotations

from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.specs.nodes_run import SPEC
from clawrelay.transports.system_event import openclaw_system_event


class NodesRun:
    name = SPEC.name
    resend_window = SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        return await openclaw_system_event(ctx, env, "now")
