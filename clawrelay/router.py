"""Runs a target's chain: ordered transports, a timeout per attempt, retries, one deadline.

The router knows nothing of any transport's insides. For each message it takes the message's
claim, makes sure it is in the journal, then tries the chain in order, journaling each attempt
the moment it ends. Only failures marked retryable are retried (exponential backoff with
jitter, at least as long as a server's retry-after), and an ambiguous attempt only when its
transport says its next try resumes without repeating anything; never past the message's deadline:
the deadline is shared by the whole chain, so each attempt gets the smaller of its own timeout
and what is left.

`stop()` (a flusher's SIGTERM) lets the attempt in flight finish and be journaled, then starts
nothing more: no retry, no next step. The message stays where that leaves it, queued or not.

What the router talks to can be given to it, as httpx's `Client(transport=...)` is: the
transports and their resend windows (by default the global table of `clawrelay.transports`), the
gateway pool and host carriers (by default opened on first use), and the wait before a retry. So
tests drive it in-process with scripted transports and no wait, and a process can share its
connections between routers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from clawrelay.claims import Claim
from clawrelay.config.routes import PlannedStep, Routes
from clawrelay.envelope import Envelope, check_text
from clawrelay.errors import LOST_IN_FLIGHT, ClawrelayError, HopLimit, Reason, TransportError
from clawrelay.journal import FLEET, QUEUEABLE, Batch, Journal, MessageRecord, now_ms
from clawrelay.outcome import Attempt, Delivery, Outcome, ReplyWait, Status, StepResult
from clawrelay.secrets import scrub
from clawrelay.transports import get_transport
from clawrelay.transports.base import AttemptContext, Transport

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.openclaw.pool import GatewayPool

log = logging.getLogger("clawrelay.router")
GROUP_CONCURRENCY = 4
AttemptHook = Callable[[Envelope, Attempt], None]
# a transport by name: a table (tests give a dict) or a lookup such as `get_transport`
Transports = Mapping[str, Transport] | Callable[[str], Transport]
Sleep = Callable[[float], Awaitable[None]]


class _Stopped(Exception):
    """Raised out of a wait between retries when the router is told to stop."""


class NotRetried(Exception):
    """Why `Router.retry` sent nothing: the message is another's to send (`in_flight`), not in
    the outbox any more (`no_longer_queued`), or may have arrived (`ambiguous`). Not a failure:
    nothing was tried, so the journal says nothing new of the message."""

    def __init__(self, message_id: str, reason: Reason) -> None:
        super().__init__(f"{message_id}: {reason}")
        self.message_id = message_id
        self.reason = reason


def _only(plan: list[PlannedStep], transports: Collection[str] | None) -> list[PlannedStep]:
    return plan if transports is None else [s for s in plan if s.transport in transports]


def retry_wait(initial: float = 0.5, maximum: float = 30.0) -> Callable[[RetryCallState], float]:
    """Exponential backoff with jitter, never shorter than the retry-after the failure carried."""
    from tenacity import wait_exponential, wait_random

    backoff = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)

    def wait(rs: RetryCallState) -> float:
        result = rs.outcome.result() if rs.outcome and not rs.outcome.failed else None
        return max(backoff(rs), getattr(result, "retry_after", None) or 0.0)

    return wait


class Router:
    def __init__(
        self,
        routes: Routes,
        journal: Journal,
        *,
        on_attempt: AttemptHook | None = None,
        deadline: float | None = None,
        wait_reply: float | None = None,
        transports: Transports | None = None,
        gateway_pool: GatewayPool | None = None,
        host_carriers: HostCarriers | None = None,
        resend_window: Callable[[str], float] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """`transports`, `gateway_pool`, `host_carriers` and `resend_window` (a transport's, by
        name) replace what the router would otherwise look up in the transports' table or open
        itself; pools given stay their giver's to close. `sleep` replaces the wait before a retry
        (it is told the seconds; a stop still drops the retry)."""
        from clawrelay.relay import context

        resident = context.resident()
        if resident is not None and gateway_pool is None and host_carriers is None:
            gateway_pool = resident.gateways  # inside a relay: its warm connections, left open
            host_carriers = resident.carriers_for(routes)
        context.track_router(self)  # a relay that stops lets this router's attempts finish
        self.routes = routes
        self.wait_reply = wait_reply  # seconds to wait for the agent's answer once delivered
        self.journal = journal
        self.on_attempt = on_attempt
        self.deadline_override = deadline
        self._transports = transports
        self._gateways = gateway_pool
        self._carriers = host_carriers
        self._resend_window = resend_window
        self._own_gateways = gateway_pool is None  # opened here, so closed here
        self._own_carriers = host_carriers is None
        self._sleep = sleep
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Finish the attempts in flight; start no other (safe to call from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def wait_for_stop(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when told to stop; True when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass
        return self.stopping

    def transport(self, name: str) -> Transport:
        """The transport a step names: one this router was given, else the global table's."""
        if self._transports is None:
            return get_transport(name)
        if isinstance(self._transports, Mapping):
            try:
                return self._transports[name]
            except KeyError:
                raise LookupError(f"this router was given no {name!r} transport") from None
        return self._transports(name)

    def resend_safe(self, transport: str, started_ms: int) -> bool:
        """Whether an interrupted attempt of `transport` may be resent now (see recovery)."""
        from clawrelay import recovery

        if self._resend_window is None:
            return recovery.resend_safe(transport, started_ms)
        return recovery.within_window(self._resend_window(transport), started_ms)

    def gateways(self) -> GatewayPool:
        """Gateway connections, opened on first use and shared by every message of this process."""
        if self._gateways is None:
            from clawrelay.openclaw.pool import GatewayPool

            self._gateways = GatewayPool(self.journal.home)
        return self._gateways

    def carriers(self) -> HostCarriers:
        """Host carriers (ssh connections, nodes), opened on first use and shared like gateways."""
        if self._carriers is None:
            from clawrelay.carriers.hosts import HostCarriers

            self._carriers = HostCarriers(self.routes, self.gateways)
        return self._carriers

    async def aclose(self) -> None:
        """Close what this router opened, carriers first (a node carrier uses a gateway)."""
        if self._own_carriers and self._carriers is not None:
            await self._carriers.aclose()
        if self._own_gateways and self._gateways is not None:
            await self._gateways.aclose()

    # -- entry points ----------------------------------------------------------------------

    def envelopes(self, targets: list[str], body: str, hops: int, *, kind: str = QUEUEABLE) -> list[Envelope]:
        check_text(body, f"the {kind}")
        limit = self.routes.config.defaults.max_hops
        if hops >= limit:
            raise HopLimit(f"{kind} refused: it has been relayed {hops} times (max_hops is {limit})")
        return [
            Envelope(sender=self.routes.self_name, target=t, body=body, hops=hops, kind=kind) for t in targets
        ]

    async def send(
        self, envelopes: list[Envelope], via: str | None = None, *, batch: Batch | None = None
    ) -> list[Delivery]:
        """`deliver` down each target's chain; `via` restricts it to one transport, for this send
        and every retry of it."""
        plans = {e.target: self.routes.plan(e.target, via) for e in envelopes}
        return await self.deliver(envelopes, plans, batch=batch, only_via=via)

    async def deliver(
        self,
        envelopes: list[Envelope],
        plans: Mapping[str, list[PlannedStep]],
        *,
        batch: Batch | None = None,
        only_via: str | None = None,
    ) -> list[Delivery]:
        """Journal every envelope first, then deliver each down its target's plan (a group
        concurrently, with a bound). A message not delivered waits in the outbox; an event (any
        other kind) is about now, so it ends `failed` instead."""
        expire = self.routes.config.outbox.expire
        claims = {}
        for env in envelopes:
            claims[env.id] = self.journal.claim(env.id)
            queue = env.kind == QUEUEABLE
            self.journal.add_message(
                env,
                expires_in_s=expire if queue else 0,
                batch=batch,
                status=Status.QUEUED if queue else Status.FAILED,
                only_via=only_via,
            )
        bound = asyncio.Semaphore(GROUP_CONCURRENCY)

        async def one(env: Envelope) -> Delivery:
            async with bound:
                return await self._deliver_claimed(env, plans[env.target], claims[env.id])

        deliveries = list(await asyncio.gather(*(one(e) for e in envelopes)))
        if self.wait_reply is not None:
            await asyncio.gather(*(self._await_reply(d, self.wait_reply) for d in deliveries))
        return deliveries

    async def _await_reply(self, d: Delivery, seconds: float) -> None:
        """After the message is journaled delivered (and its claim let go): the agent's answer,
        for up to `seconds`. Whatever comes of it, the message stays delivered."""
        if d.status is not Status.DELIVERED:
            return
        if d.reply is not None:  # the transport had it already (agent_cli, wait_reply: true)
            d.reply_status = ReplyWait.REPLIED
            return
        if d.later is None:
            d.reply_status = ReplyWait.UNAVAILABLE
            return
        try:
            async with asyncio.timeout(seconds):
                d.reply_status, text = await d.later()
        except TimeoutError:
            d.reply_status = ReplyWait.NO_REPLY
            return
        if d.reply_status is not ReplyWait.REPLIED:
            d.reply_error = scrub(text)
        elif text is not None:
            d.reply = scrub(text)
            self.journal.set_reply(d.id, d.reply or "")

    async def deliver_for(
        self, env: Envelope, only_via: str | None, *, resume: Collection[str] | None = None
    ) -> Delivery:
        """Deliver a message another relay of the fleet could not, down this machine's chain for
        its target. It is journaled here as kind `fleet` with its sender's id (the idempotency key
        stays the same), and it is never queued here: the fleet's shared outbox keeps it until a
        relay delivers it, so a run that does not deliver ends `failed` on this side. `resume`:
        only these transports (an attempt another relay began through them may have arrived: a
        resend is harmless through the same ways only)."""
        claim = self.journal.claim(env.id)
        if claim is None:
            raise NotRetried(env.id, Reason.IN_FLIGHT)
        try:
            if self.journal.by_id(env.id) is None:
                self.journal.add_message(
                    replace(env, kind=FLEET), expires_in_s=0, status=Status.FAILED, only_via=only_via
                )
            else:  # tried here before: an attempt left open was this relay's own, before it died
                self.journal.close_interrupted(env.id, self.resend_safe)
            plan = _only(self.routes.plan(env.target, only_via), resume)
        except BaseException:
            claim.release()
            raise
        return await self._deliver_claimed(env, plan, claim, queue=False)

    async def retry(
        self,
        record: MessageRecord,
        *,
        manual: bool = False,
        offered: bool = False,
        resume: Collection[str] | None = None,
    ) -> Delivery:
        """Deliver an outbox message again, down the chain (or the `--via`) it was sent with.
        Raises NotRetried when it is not to be sent: another process holds it, it left the
        outbox since it was listed or, unless a person asked for this one message (`manual`), it
        may have arrived (an interrupted attempt whose resend would not be harmless). `offered`:
        the fleet's relay of this machine delivers its own message from the shared outbox;
        `resume`: only these transports (as `deliver_for`)."""
        claim = self.journal.claim(record.id)
        if claim is None:
            raise NotRetried(record.id, Reason.IN_FLIGHT)
        try:
            fresh = self._reread_for_retry(record.id, manual, offered)
        except NotRetried as e:
            claim.release(finished=e.reason is Reason.NO_LONGER_QUEUED)
            raise
        except BaseException:
            claim.release()
            raise
        plan = _only(self.routes.plan(fresh.target, fresh.only_via), resume)
        return await self._deliver_claimed(fresh.envelope(), plan, claim, offered=offered)

    def _reread_for_retry(self, message_id: str, manual: bool, offered: bool = False) -> MessageRecord:
        """With the claim held: the message as it is now, or NotRetried."""
        from clawrelay import recovery

        # Holding its claim, we know any attempt it left open was its dead sender's.
        self.journal.close_interrupted(message_id, self.resend_safe)
        fresh = self.journal.by_id(message_id)
        if fresh is not None and fresh.status is Status.OFFERED and not offered:
            raise NotRetried(message_id, Reason.OFFERED)  # the fleet's to deliver now
        ready = (
            (Status.QUEUED, Status.AMBIGUOUS, Status.OFFERED)
            if offered
            else (Status.QUEUED, Status.AMBIGUOUS)
        )
        if fresh is None or fresh.kind != QUEUEABLE or fresh.status not in ready:
            raise NotRetried(message_id, Reason.NO_LONGER_QUEUED)
        if (
            not manual
            and fresh.status is Status.QUEUED
            and not recovery.still_resendable(fresh, self.resend_safe)
        ):
            self.journal.settle_interrupted(fresh.id)
            fresh.status = Status.AMBIGUOUS
        if not manual and fresh.status is Status.AMBIGUOUS:
            raise NotRetried(message_id, Reason.AMBIGUOUS)
        if fresh.target not in self.routes.config.targets:
            raise TransportError(
                f"{message_id}: target {fresh.target!r} is no longer in the routes",
                reason=Reason.UNKNOWN_TARGET,
            )
        return fresh

    # -- one message -----------------------------------------------------------------------

    async def _deliver_claimed(
        self,
        env: Envelope,
        plan: list[PlannedStep],
        claim: Claim | None,
        *,
        queue: bool | None = None,
        offered: bool = False,
    ) -> Delivery:
        """One message's run down its plan, begun and finished in the journal; its claim let go
        at the end, for good unless it stays queued (`queue`: by default a message does, any
        other kind ends `failed`)."""
        delivery = Delivery(env.id, env.target, Status.QUEUED)
        try:
            run = self.journal.begin_run(env.id)
            delivery = await self._try_chain(env, plan, run)
            if not (env.kind == QUEUEABLE if queue is None else queue) and delivery.status is Status.QUEUED:
                delivery.status = Status.FAILED
            if offered and delivery.status is Status.QUEUED:
                delivery.status = Status.OFFERED  # the fleet keeps it: never queued here meanwhile
            policy = self.routes.config.outbox
            self.journal.finish(delivery, backoff_s=policy.backoff, max_backoff_s=policy.max_backoff)
        finally:
            if claim is not None:
                claim.release(finished=delivery.status not in (Status.QUEUED, Status.OFFERED))
        return delivery

    async def _try_chain(self, env: Envelope, plan: list[PlannedStep], run: int) -> Delivery:
        """Each step in turn until one delivers, within the message's one deadline."""
        budget = self.deadline_override or self.routes.deadline(env.target)
        deadline = time.monotonic() + budget
        delivery = Delivery(env.id, env.target, Status.QUEUED)
        ambiguous = False
        for step in plan:
            if self.stopping:
                break  # the message keeps its place; the next flush starts its chain again
            if time.monotonic() >= deadline:
                self._record(
                    env,
                    delivery,
                    Attempt(
                        step=step.index,
                        transport=step.transport,
                        outcome=Outcome.FAILED,
                        reason=Reason.DEADLINE,
                        retryable=True,
                        detail=f"not tried: the {budget:g}s deadline ran out",
                        started_ms=now_ms(),
                        run=run,
                    ),
                )
                continue
            result = await self._try_step(env, step, run, deadline, delivery)
            if result.outcome is Outcome.DELIVERED:
                delivery.status, delivery.via = Status.DELIVERED, step.transport
                delivery.reply = scrub(result.reply)
                delivery.later = result.later
                return delivery
            if result.outcome is Outcome.AMBIGUOUS:
                ambiguous = True
                if step.on_ambiguous == "stop":
                    break
        delivery.status = Status.AMBIGUOUS if ambiguous else Status.QUEUED
        return delivery

    async def _try_step(
        self, env: Envelope, step: PlannedStep, run: int, deadline: float, delivery: Delivery
    ) -> StepResult:
        """One step's attempts: the first, then its retries while they are allowed."""
        from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, stop_before_delay

        transport = self.transport(step.transport)
        results: list[StepResult] = []

        async def attempt() -> StepResult:
            results.append(await self._try_once(env, step, transport, run, deadline, delivery))
            return results[-1]

        def last_result(rs: RetryCallState) -> StepResult:
            assert rs.outcome is not None
            result: StepResult = rs.outcome.result()
            return result

        retrying = AsyncRetrying(
            stop=stop_after_attempt(step.retries + 1) | stop_before_delay(deadline - time.monotonic()),
            wait=retry_wait(),
            sleep=self._pause,
            retry=retry_if_result(
                lambda r: r.retryable and r.outcome is not Outcome.DELIVERED and not self.stopping
            ),
            retry_error_callback=last_result,
        )
        try:
            result: StepResult = await retrying(attempt)
        except _Stopped:
            return results[-1]
        return result

    async def _pause(self, seconds: float) -> None:
        """The wait before a retry, cut short (and the retry dropped) when told to stop."""
        if self._sleep is None:
            stopped = await self.wait_for_stop(seconds)
        else:
            await self._sleep(seconds)
            stopped = self.stopping
        if stopped:
            raise _Stopped

    async def _try_once(
        self,
        env: Envelope,
        step: PlannedStep,
        transport: Transport,
        run: int,
        deadline: float,
        delivery: Delivery,
    ) -> StepResult:
        """One attempt, journaled as started before it can send anything and ended once it is
        over, however it ends: what the transport said, a timeout or an error, as an outcome."""
        ctx = AttemptContext(
            self.routes,
            env.target,
            step,
            gateway_pool=self.gateways,
            host_carriers=self.carriers,
            earlier=tuple(delivery.attempts),
            deadline=min(deadline, time.monotonic() + step.timeout),
        )
        started, t0 = now_ms(), time.monotonic()
        # In the journal before anything can leave: a sender that dies in there leaves a record
        # that recovery can tell for what it is.
        row = self.journal.start_attempt(
            env.id,
            Attempt(
                step=step.index,
                transport=step.transport,
                outcome=Outcome.STARTED,
                started_ms=started,
                run=run,
            ),
        )
        try:
            async with asyncio.timeout(ctx.remaining()):
                result = await transport.deliver(env, ctx)
        except TimeoutError:
            waited = f"no answer within {time.monotonic() - t0:.1f}s"
            if ctx.sent:
                result = StepResult.ambiguous(Reason.TIMEOUT, f"{waited} after sending")
            elif ctx.connecting:  # the gateway's handshake never completed: nothing was sent
                result = StepResult.failed(
                    Reason.HANDSHAKE_TIMEOUT,
                    f"{waited}: {ctx.connecting} did not complete the handshake",
                    retryable=True,
                )
            else:
                result = StepResult.failed(Reason.TIMEOUT, waited, retryable=True)
        except ClawrelayError as e:  # TransportError, or a ConfigError such as an unset secret
            if ctx.sent and e.reason in LOST_IN_FLIGHT:  # it left; the answer went with the connection
                result = StepResult.ambiguous(e.reason, str(e))
            else:
                result = StepResult.failed(
                    e.reason,
                    str(e),
                    retryable=getattr(e, "retryable", False),
                    retry_after=getattr(e, "retry_after", None),
                )
        except Exception as e:  # a bug in a transport must not lose the message or the record
            result = StepResult.failed(Reason.INTERNAL_ERROR, f"{e.__class__.__name__}: {e}")
        attempt = Attempt(
            step=step.index,
            transport=step.transport,
            outcome=result.outcome,
            carrier=ctx.carrier,  # the one place a transport says which carrier it used
            reason=result.reason,
            retryable=result.retryable,
            detail=scrub(result.detail),
            started_ms=started,
            elapsed_ms=int((time.monotonic() - t0) * 1000),
            run=run,
        )
        self._record(env, delivery, attempt, row)
        return result

    def _record(self, env: Envelope, delivery: Delivery, attempt: Attempt, row: int | None = None) -> None:
        """An attempt's end: its `started` row completed, or (no row: the deadline had passed
        before it could start) one complete row."""
        delivery.attempts.append(attempt)
        if row is None:
            self.journal.add_attempt(env.id, attempt)
        else:
            # delivered: the chain ends here and `_deliver_claimed` writes the run's finish next
            self.journal.end_attempt(row, attempt, finish_follows=True)
        if self.on_attempt is not None:
            try:
                self.on_attempt(env, attempt)
            except Exception:  # showing progress must never cut a message's record short
                log.warning("progress of %s could not be shown", env.id, exc_info=True)
