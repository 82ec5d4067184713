"""A system event (`wake`) into the target's session: the way to tell an agent something *now*.

Two ways, both OpenClaw's own: the gateway's `wake` method (transport `wake`), and the target
host's `openclaw system event`, run through its carriers (`system_event`), which reaches that
machine's gateway with that machine's config. With mode `now` the gateway runs a heartbeat turn
at once with the text as a system event; `next-heartbeat` leaves it for the next one.

Neither has an idempotency key: a timeout after the request left is ambiguous, never retried.
"""

from __future__ import annotations

from typing import Literal

from clawrelay.config.model import StepBase
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.remote_cli import run_openclaw

Mode = Literal["now", "next-heartbeat"]


class WakeStep(StepBase):
    """An event's gateway rung (built by `clawrelay.events`, not written in routes.yaml)."""

    transport: Literal["wake"] = "wake"
    gateway: str | None = None
    mode: Mode = "now"


class SystemEventStep(StepBase):
    """An event's host rung: `openclaw system event` over the host's carriers."""

    transport: Literal["system_event"] = "system_event"
    mode: Mode = "now"


async def wake(ctx: AttemptContext, gateway: str | None, mode: str, text: str) -> str:
    """`wake` into the target's session on a gateway; what was done, for the attempt's detail."""
    client, name = await ctx.writer(gateway, "wake")
    call = await client.start("wake", {"mode": mode, "text": text, "sessionKey": ctx.session})
    ctx.mark_sent()
    await call.ack
    return f"{name}: wake {mode} into {ctx.session}"


class Wake:
    name = "wake"

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, WakeStep)
        return StepResult.delivered(await wake(ctx, opts.gateway, opts.mode, env.as_text()))


async def openclaw_system_event(ctx: AttemptContext, env: Envelope, mode: str) -> StepResult:
    """`openclaw system event` on the target's host, read the way every remote CLI result is."""
    session = ctx.session
    res = await run_openclaw(
        ctx, ["system", "event", "--mode", mode, "--session-key", session, "--text", env.as_text()]
    )
    if res.timed_out:
        return StepResult.ambiguous("timeout", f"openclaw system event still running at {res.elapsed_ms} ms")
    if res.exit_code == 0:
        return StepResult.delivered(f"system event {mode} into {session} ({res.elapsed_ms} ms)")
    detail = f"openclaw system event exited {res.exit_code}" + (f": {t}" if (t := res.stderr_tail()) else "")
    if res.exit_code in (126, 127):
        return StepResult.failed("not_found", f"{detail} (set the host's `openclaw:` to the CLI's path)")
    return StepResult.failed("remote_error", detail, retryable=True)


class SystemEvent:
    name = "system_event"

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, SystemEventStep)
        return await openclaw_system_event(ctx, env, opts.mode)
