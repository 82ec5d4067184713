"""The first rung: the message goes straight into the target's session through its gateway.

It is what the in-agent `sessions_send` tool does: the gateway's `agent` method with the target's
session key, `deliver: false`, and the message id as idempotency key, so a retry after an
unanswered attempt is dropped by the gateway as a duplicate instead of arriving twice. Delivered
when the gateway accepts the run. With `wait_reply`, the final reply is recorded too, and a reply
that does not come in time is `ambiguous`: the run goes on over there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from clawrelay.envelope import Envelope
from clawrelay.errors import LOST_IN_FLIGHT
from clawrelay.openclaw.errors import GatewayError
from clawrelay.outcome import ReplyWait, StepResult
from clawrelay.reasons import Reason
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.specs.sessions_send import SPEC, SessionsSendStep


def reply_text(final: dict[str, Any]) -> str | None:
    payloads = (final.get("result") or {}).get("payloads") or []
    texts = [str(p["text"]) for p in payloads if isinstance(p, dict) and p.get("text")]
    return "\n".join(texts) if texts else None


async def _answer(final: Awaitable[dict[str, Any]]) -> tuple[ReplyWait, str | None]:
    """The run's final answer, once it comes: its reply text, or why there is none."""
    try:
        done = await final
    except GatewayError as e:
        return ReplyWait.LOST, str(e)
    if done.get("status") != "ok":
        return ReplyWait.RUN_FAILED, str(done.get("summary") or done.get("error") or done.get("status"))
    return ReplyWait.REPLIED, reply_text(done) or ""


class SessionsSend:
    name = SPEC.name
    resend_window = SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, SessionsSendStep)
        client, name = await ctx.writer(opts.gateway, "agent")
        session = ctx.session
        call = await client.start(
            "agent",
            {"message": env.as_text(), "sessionKey": session, "deliver": False, "idempotencyKey": env.id},
        )
        ctx.mark_sent()
        try:
            ack = await call.ack
        except GatewayError as e:
            if e.reason in LOST_IN_FLIGHT:  # it left, and the answer was lost with the connection
                return StepResult.ambiguous(e.reason, str(e))
            raise
        status, run = ack.get("status"), ack.get("runId")
        where = f"{name}: run {run} {status} in {session}"
        if status != "accepted":
            return StepResult.delivered(where)
        if not opts.wait_reply:  # a sender that wants the answer (`send --wait-reply`) awaits it
            return StepResult.delivered(where, later=lambda: _answer(call.final))
        try:
            final = await call.final
        except GatewayError as e:
            return StepResult.ambiguous(
                e.reason if e.reason in LOST_IN_FLIGHT else Reason.NO_REPLY, f"{where}, then no reply: {e}"
            )
        if final.get("status") != "ok":
            return StepResult.delivered(
                f"{where}; the run ended {final.get('status')}: "
                f"{final.get('summary') or final.get('error') or ''}".rstrip(": ")
            )
        return StepResult.delivered(where, reply=reply_text(final))
