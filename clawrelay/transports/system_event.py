"""A system event (`wake`) into the target's session: the way to tell an agent something *now*.

Two ways, both OpenClaw's own: the gateway's `wake` method (transport `wake`), and the target
host's `openclaw system event`, run through its carriers (`system_event`), which reaches that
machine's gateway with that machine's config. The gateway queues the text for the session and
runs a heartbeat turn with it as a `System:` line (with a session key, `next-heartbeat` runs one
at once too).

The gateway accepting the event is not the agent seeing it: the heartbeat turn can be deferred
behind a busy session, or fail inside the gateway (seen live: a wake during a fresh session's first
turn fails three times with "Session transcript anchor was not returned", and the text never
reaches the model; the gateway drops it from its queue with the failed turn). So before sending,
clawrelay subscribes to the session's events on the same connection (`sessions.messages.subscribe`:
heartbeat runs' events reach only subscribed connections) and waits, within the attempt's time,
for the heartbeat turn that starts after the event to end:

- it ended well (and, where `status` lists the session's queue, took the event): `delivered`;
- it failed: `ambiguous`, reason `turn_failed`. The gateway does not say whether the model had the
  event before the failure (a model that rejects the request did get it), so it is never sent
  again, by this rung or the next;
- no turn started, or none ended, in time: `ambiguous`, reason `unconfirmed` (it may still be seen:
  a deferred turn runs when the session is free).

`system_event` is watched the same way on the target's gateway (its sessions_send step's) when
that answers from here; when it does not, which is why this rung is usually reached, the host's
`openclaw system event` exiting 0 only says the host's gateway queued it: `ambiguous`,
`unconfirmed`, saying so.

Neither has an idempotency key: a timeout after the request left is ambiguous, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from clawrelay.envelope import Envelope
from clawrelay.errors import ClawrelayError, TransportError
from clawrelay.outcome import Outcome, StepResult
from clawrelay.reasons import Reason
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.remote_cli import run_openclaw
from clawrelay.transports.specs import system_event as system_event_spec
from clawrelay.transports.specs import wake as wake_spec
from clawrelay.transports.specs.system_event import SystemEventStep
from clawrelay.transports.specs.wake import WakeStep

if TYPE_CHECKING:
    from clawrelay.openclaw.client import GatewayClient, Listener

MARGIN_S = 0.2  # a watch ends this long before its attempt's timeout, to report what it saw
STATUS_WAIT_S = 2.0  # the most the `status` look at the session's queue may take
WATCH_CONNECT_S = 3.0  # system_event: the most spent opening the target's gateway to watch on


@dataclass(frozen=True)
class Turn:
    """What the heartbeat turn an event started came to, as the gateway told it."""

    outcome: Literal["ok", "failed", "unconfirmed"]
    detail: str  # for the attempt: "heartbeat turn 1a2b3c4d ended ok", "… failed: …", "no … within 3s"
    short: str  # for a note that only mentions it: "turn ok", "turn failed: …", "not confirmed within 3s"


@dataclass(frozen=True)
class Woken:
    """A wake the gateway took (`sent`: "gw: wake now into agent:main:main") and its turn."""

    sent: str
    turn: Turn

    def result(self) -> StepResult:
        detail = f"{self.sent}; {self.turn.detail}"
        if self.turn.outcome == "ok":
            return StepResult.delivered(detail)
        reason = Reason.TURN_FAILED if self.turn.outcome == "failed" else Reason.UNCONFIRMED
        return StepResult.ambiguous(reason, detail)


class TurnWatch:
    """A session's heartbeat turns, as one connection's events tell them (see `watching`)."""

    def __init__(self, client: GatewayClient, events: Listener, key: str, started: float) -> None:
        self.client = client
        self.events = events
        self.key = key.lower()
        self.started = started

    async def turn(self, text: str, until: float) -> Turn:
        """The first heartbeat turn of the session that starts from now on, and takes `text`,
        until it ends or `until` (a `time.monotonic()`) comes."""
        run: str | None = None
        report: dict[str, Any] | None = None  # the gateway's last `heartbeat` event (not per session)
        lost: ClawrelayError | None = None
        try:
            async with asyncio.timeout(max(0.0, until - time.monotonic())):
                while True:
                    frame = await self.events.next()
                    payload = frame.get("payload") or {}
                    if frame.get("event") == "heartbeat":
                        report = payload
                        continue
                    data = payload.get("data") or {}
                    if (
                        payload.get("stream") != "lifecycle"
                        or not payload.get("isHeartbeat")
                        or str(payload.get("sessionKey") or "").lower() != self.key
                    ):
                        continue
                    phase = data.get("phase")
                    if phase == "start" and run is None:
                        run = str(payload.get("runId") or "")
                    elif run is not None and payload.get("runId") == run and phase in ("end", "error"):
                        if phase == "error" or data.get("aborted"):
                            return await self._failed(run, str(data.get("error") or "aborted"), text, until)
                        if await self._queued(text, until):
                            run = None  # prepared before the event came: the next turn takes it
                            continue
                        return Turn("ok", f"heartbeat turn {run[:8]} ended ok", "turn ok")
        except TimeoutError:
            pass
        except ClawrelayError as e:  # the connection closed: the event was queued all the same
            lost = e
        waited = f"{time.monotonic() - self.started:.1f}s"
        if lost is not None:
            why = f"the connection closed before its turn ended ({lost.reason})"
        elif run is None:
            why = f"no heartbeat turn started within {waited}"
            if report is not None:
                why += f" (the gateway's last heartbeat: {report.get('status')}, {report.get('reason')})"
        else:
            why = f"heartbeat turn {run[:8]} still running after {waited}"
        return Turn("unconfirmed", f"{why}; the agent may still see it", f"not confirmed within {waited}")

    async def _failed(self, run: str, error: str, text: str, until: float) -> Turn:
        error = " ".join(error.replace("⚠️", "").split()).rstrip(".")
        where = (
            "the event is still queued for the session's next turn"
            if await self._queued(text, until)
            else "whether the model had the event before that is not known"
        )
        return Turn(
            "failed", f"the heartbeat turn {run[:8]} failed: {error}; {where}", f"turn failed: {error}"
        )

    async def _queued(self, text: str, until: float) -> bool:
        """Whether the gateway still holds the event (`status` lists the main sessions' queues;
        another session's event is never listed there, and then this says no)."""
        wait = min(STATUS_WAIT_S, until - time.monotonic() - 0.05)
        if wait < 0.1:
            return False
        try:
            status = await self.client.request("status", {}, timeout=wait)
        except ClawrelayError:
            return False
        return text.strip() in (status.get("queuedSystemEvents") or [])


@contextlib.asynccontextmanager
async def watching(client: GatewayClient, session: str, until: float) -> AsyncIterator[TurnWatch]:
    """Watch `session`'s heartbeat turns on `client` while the block runs: enter it before
    sending the event, so the turn it starts cannot be missed."""
    with client.listen("agent", "heartbeat") as events:
        key = session
        wait = max(0.1, min(STATUS_WAIT_S, until - time.monotonic()))
        with contextlib.suppress(ClawrelayError):  # an older gateway: its events may come all the same
            answer = await client.request("sessions.messages.subscribe", {"key": session}, timeout=wait)
            key = str(answer.get("key") or session)  # the gateway's canonical form of the key
        yield TurnWatch(client, events, key, time.monotonic())


async def wake(
    ctx: AttemptContext, gateway: str | None, mode: str, text: str, *, within: float | None = None
) -> Woken:
    """`wake` into the target's session on a gateway, and the heartbeat turn it started, watched
    until the attempt's time is up (or `within` seconds)."""
    until = ctx.deadline - MARGIN_S if within is None else time.monotonic() + within
    client, name = await ctx.writer(gateway, "wake")
    async with watching(client, ctx.session, until) as watch:
        call = await client.start("wake", {"mode": mode, "text": text, "sessionKey": ctx.session})
        ctx.mark_sent()
        answer = await call.ack
        if answer.get("ok") is False:  # nothing was queued
            why = answer.get("reason") or "no reason given"
            raise TransportError(f"{name}: the gateway did not take the wake ({why})", reason=Reason.REJECTED)
        return Woken(f"{name}: wake {mode} into {ctx.session}", await watch.turn(text, until))


class Wake:
    name = wake_spec.SPEC.name
    resend_window = wake_spec.SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, WakeStep)
        return (await wake(ctx, opts.gateway, opts.mode, env.as_text())).result()


async def openclaw_system_event(ctx: AttemptContext, env: Envelope, mode: str) -> StepResult:
    """`openclaw system event` on the target's host, read the way every remote CLI result is."""
    session = ctx.session
    res = await run_openclaw(
        ctx, ["system", "event", "--mode", mode, "--session-key", session, "--text", env.as_text()]
    )
    if res.timed_out:
        return StepResult.ambiguous(
            Reason.TIMEOUT, f"openclaw system event still running at {res.elapsed_ms} ms"
        )
    if res.exit_code == 0:
        return StepResult.delivered(f"system event {mode} into {session} ({res.elapsed_ms} ms)")
    detail = f"openclaw system event exited {res.exit_code}" + (f": {t}" if (t := res.stderr_tail()) else "")
    if res.exit_code in (126, 127):
        return StepResult.failed(Reason.NOT_FOUND, f"{detail} (set the host's `openclaw:` to the CLI's path)")
    return StepResult.failed(Reason.REMOTE_ERROR, detail, retryable=True)


class SystemEvent:
    name = system_event_spec.SPEC.name
    resend_window = system_event_spec.SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, SystemEventStep)
        session_step = ctx.routes.session_step(ctx.target)
        if session_step is None:
            return _unwatched(
                await openclaw_system_event(ctx, env, opts.mode),
                "the routes give the target no gateway to watch it on",
            )
        gateway, name = ctx.gateway(session_step.gateway)
        until = ctx.deadline - MARGIN_S
        try:
            client = await ctx.gateways.get(
                name, gateway.url, gateway.resolve_token(), timeout=min(WATCH_CONNECT_S, ctx.remaining() / 3)
            )
        except ClawrelayError as e:
            return _unwatched(
                await openclaw_system_event(ctx, env, opts.mode),
                f"no connection to {name} from here ({e.reason})",
            )
        async with watching(client, ctx.session, until) as watch:
            result = await openclaw_system_event(ctx, env, opts.mode)
            if result.outcome is not Outcome.DELIVERED:
                return result
            turn = await watch.turn(env.as_text(), until)
        return Woken(f"{result.detail}, watched on {name}", turn).result()


def _unwatched(result: StepResult, why: str) -> StepResult:
    """The host's gateway queued the event, and nothing here can see its turn."""
    if result.outcome is not Outcome.DELIVERED:
        return result
    return StepResult.ambiguous(Reason.UNCONFIRMED, f"{result.detail}; its turn cannot be watched: {why}")
