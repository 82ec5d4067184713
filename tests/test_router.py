"""The router in-process: scripted transports, a journal in a temporary folder, no server.

The routes name real transports (the schema admits only those); each is stood in for by a
`ScriptedTransport` that plays a scripted sequence of attempts, so a test says exactly what the
far side did and checks what a user would see: the Delivery and the journal's record.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from clawrelay.config import Routes, load_routes
from clawrelay.envelope import Envelope
from clawrelay.errors import Reason, TransportError
from clawrelay.journal import Journal, MessageRecord, now_ms
from clawrelay.outcome import Attempt, Delivery, Outcome, Status, StepResult
from clawrelay.router import NotRetried, Router
from clawrelay.transports.base import AttemptContext

T = TypeVar("T")


@dataclass
class Act:
    """One scripted attempt: what the transport does before it returns `result` (or raises it)."""

    result: StepResult | BaseException
    sent: bool = False  # ctx.mark_sent() first: the message has left
    takes: float = 0.0  # seconds the attempt lasts after that (an attempt's timeout can cut it)
    carrier: str | None = None  # the carrier it says it used (ctx.carrier)


@dataclass
class Call:
    at: float  # time.monotonic() when the attempt began
    remaining: float  # what the attempt was given: ctx.remaining() at its start
    ctx: AttemptContext


class ScriptedTransport:
    name: ClassVar[str] = "scripted"
    resend_window: ClassVar[float] = 0.0  # not read: a router is given its windows (`resend_window=`)

    def __init__(self, *acts: Act | StepResult | BaseException) -> None:
        self.acts = [a if isinstance(a, Act) else Act(a) for a in acts]
        self.calls: list[Call] = []

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        assert self.acts, f"{ctx.step.transport}: attempt {len(self.calls) + 1} was not in the script"
        act = self.acts.pop(0)
        self.calls.append(Call(time.monotonic(), ctx.remaining(), ctx))
        if act.carrier is not None:
            ctx.carrier = act.carrier
        if act.sent:
            ctx.mark_sent()
        if act.takes:
            await asyncio.sleep(act.takes)
        if isinstance(act.result, BaseException):
            raise act.result
        return act.result


class Sleeps:
    """The router's wait before a retry, returning at once: a retry's backoff costs no time, and
    what the router asked to wait is remembered."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


DELIVERED = StepResult.delivered("ok")
REFUSED = StepResult.failed(Reason.CONNECTION_REFUSED, "refused", retryable=True)
REJECTED = StepResult.failed(Reason.REJECTED, "no such session")  # retrying would not change it


def routes_of(tmp_path: Path, first: str = "", second: str = "", target: str = "") -> Routes:
    """A target `t` whose chain is `command` (scripted as the first step) then `memory_file`."""
    path = tmp_path / "routes.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        self: tester
        defaults: {{timeout: 5s, retries: 0, deadline: 30s}}
        hosts:
          here: {{local: true, workspace: "{tmp_path / "workspace"}"}}
        targets:
          t:
            host: here
            {target}
            chain:
              - command: {{argv: [unused] {", " + first if first else ""}}}
              - memory_file: {{ {second} }}
        """)
    )
    return load_routes(str(path))


@dataclass
class Rig:
    """A router over scripted transports, and the journal it writes."""

    routes: Routes
    journal: Journal
    first: ScriptedTransport
    second: ScriptedTransport
    seen: list[Attempt] = field(default_factory=list)  # what on_attempt was told, in order
    router: Router = field(init=False)
    kw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.router = Router(
            self.routes,
            self.journal,
            on_attempt=lambda _env, a: self.seen.append(a),
            transports={"command": self.first, "memory_file": self.second},
            **self.kw,
        )

    def drive(self, coro: Callable[[Router], Awaitable[T]]) -> T:
        async def go() -> T:
            try:
                return await coro(self.router)
            finally:
                await self.router.aclose()

        return asyncio.run(go())

    def send(self, body: str = "hello") -> Delivery:
        (d,) = self.drive(lambda r: r.send(r.envelopes(["t"], body, 0)))
        return d

    def record(self, message_id: str) -> MessageRecord:
        found = self.journal.get(message_id)
        assert found is not None
        return found


def rig(
    tmp_path: Path,
    first: ScriptedTransport,
    second: ScriptedTransport | None = None,
    *,
    yaml: dict[str, str] | None = None,
    **kw: Any,
) -> Rig:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Rig(
        routes_of(tmp_path, **(yaml or {})),
        Journal(home),
        first,
        second if second is not None else ScriptedTransport(),
        kw=kw,
    )


def outcomes(attempts: list[Attempt]) -> list[tuple[str, str, str | None]]:
    return [(a.transport, str(a.outcome), a.reason) for a in attempts]


# -- the chain ------------------------------------------------------------------------------


def test_the_first_step_that_delivers_ends_the_chain_and_the_journal_says_which(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(REJECTED), ScriptedTransport(Act(DELIVERED, carrier="local")))
    d = r.send()
    assert (d.status, d.via, d.exit_code) == (Status.DELIVERED, "memory_file", 0)
    record = r.record(d.id)
    assert record.status is Status.DELIVERED and record.via == "memory_file"
    assert outcomes(record.attempts) == [
        ("command", "failed", "rejected"),
        ("memory_file", "delivered", None),
    ]
    # the carrier the transport chose is the one the attempt records, journal and Delivery alike
    assert [a.carrier for a in record.attempts] == [None, "local"] == [a.carrier for a in d.attempts]
    assert r.seen == d.attempts  # the progress hook saw each attempt as it ended


def test_a_step_that_is_ambiguous_and_the_rest_fail_leaves_the_message_ambiguous_not_queued(
    tmp_path: Path,
) -> None:
    r = rig(
        tmp_path,
        ScriptedTransport(StepResult.ambiguous(Reason.TIMEOUT, "no ack")),
        ScriptedTransport(REJECTED),
    )
    d = r.send()
    assert (d.status, d.exit_code, d.queued) == (Status.AMBIGUOUS, 4, False)
    assert r.record(d.id).status is Status.AMBIGUOUS  # listed, never retried automatically
    assert [x.status for x in r.journal.outbox()] == [Status.AMBIGUOUS]


def test_on_ambiguous_continue_tries_the_next_step(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(StepResult.ambiguous(Reason.TIMEOUT)), ScriptedTransport(DELIVERED))
    d = r.send()
    assert d.status is Status.DELIVERED and d.via == "memory_file"
    assert outcomes(r.record(d.id).attempts) == [
        ("command", "ambiguous", "timeout"),
        ("memory_file", "delivered", None),
    ]


def test_on_ambiguous_stop_ends_the_chain_there(tmp_path: Path) -> None:
    second = ScriptedTransport(DELIVERED)
    r = rig(
        tmp_path,
        ScriptedTransport(StepResult.ambiguous(Reason.TIMEOUT)),
        second,
        yaml={"first": "on_ambiguous: stop"},
    )
    d = r.send()
    assert d.status is Status.AMBIGUOUS and second.calls == []
    assert outcomes(r.record(d.id).attempts) == [("command", "ambiguous", "timeout")]


def test_on_ambiguous_stop_set_on_the_target_holds_for_each_step(tmp_path: Path) -> None:
    second = ScriptedTransport(DELIVERED)
    r = rig(
        tmp_path,
        ScriptedTransport(StepResult.ambiguous(Reason.TIMEOUT)),
        second,
        yaml={"target": "on_ambiguous: stop"},
    )
    assert r.send().status is Status.AMBIGUOUS and second.calls == []


def test_nothing_delivered_leaves_the_message_queued_with_its_next_retry_set(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(REJECTED), ScriptedTransport(REFUSED))
    d = r.send()
    assert (d.status, d.exit_code) == (Status.QUEUED, 1)
    record = r.record(d.id)
    assert record.status is Status.QUEUED and record.runs == 1
    assert record.next_attempt_ms is not None and record.next_attempt_ms > now_ms()


def test_a_transport_that_crashes_fails_its_attempt_and_loses_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(RuntimeError("oops")), ScriptedTransport(DELIVERED))
    d = r.send()
    assert d.status is Status.DELIVERED
    (crashed, _) = r.record(d.id).attempts
    assert (crashed.outcome, crashed.reason) == (Outcome.FAILED, Reason.INTERNAL_ERROR)
    assert crashed.detail == "RuntimeError: oops"


# -- retries --------------------------------------------------------------------------------


def test_a_retryable_failure_is_retried_up_to_the_steps_retries(tmp_path: Path) -> None:
    first = ScriptedTransport(REFUSED, REFUSED, DELIVERED)
    r = rig(tmp_path, first, yaml={"first": "retries: 2"}, sleep=Sleeps())
    d = r.send()
    assert d.status is Status.DELIVERED and d.via == "command" and len(first.calls) == 3
    assert outcomes(r.record(d.id).attempts) == [
        ("command", "failed", "connection_refused"),
        ("command", "failed", "connection_refused"),
        ("command", "delivered", None),
    ]


def test_a_failure_not_retryable_is_not_retried(tmp_path: Path) -> None:
    first, second = ScriptedTransport(REJECTED, DELIVERED), ScriptedTransport(DELIVERED)
    r = rig(tmp_path, first, second, yaml={"first": "retries: 3"}, sleep=Sleeps())
    d = r.send()
    assert len(first.calls) == 1 and d.via == "memory_file"
    assert outcomes(r.record(d.id).attempts) == [
        ("command", "failed", "rejected"),
        ("memory_file", "delivered", None),
    ]


def test_an_ambiguous_attempt_is_retried_only_when_its_transport_says_resuming_is_harmless(
    tmp_path: Path,
) -> None:
    lost = StepResult.ambiguous(Reason.CONNECTION_LOST, "part 1 of 2 sent")
    resumable = StepResult.ambiguous(Reason.CONNECTION_LOST, "part 1 of 2 sent", retryable=True)
    first = ScriptedTransport(lost, DELIVERED)
    r = rig(tmp_path, first, ScriptedTransport(REJECTED), yaml={"first": "retries: 2"}, sleep=Sleeps())
    assert r.send().status is Status.AMBIGUOUS and len(first.calls) == 1

    first = ScriptedTransport(resumable, DELIVERED)
    r = rig(tmp_path, first, yaml={"first": "retries: 2"}, sleep=Sleeps())
    assert r.send().status is Status.DELIVERED and len(first.calls) == 2


def test_a_retry_after_is_a_floor_for_the_wait_before_the_next_attempt(tmp_path: Path) -> None:
    """Real time: the backoff before a first retry is at most 1 s (0.5 s and up to 0.5 s of
    jitter), so a second attempt 1.2 s later is the server's retry-after at work."""
    told = StepResult.failed(Reason.RATE_LIMITED, "slow down", retryable=True, retry_after=1.2)
    first = ScriptedTransport(told, DELIVERED)
    r = rig(tmp_path, first, yaml={"first": "retries: 1"})
    d = r.send()
    assert d.status is Status.DELIVERED and len(first.calls) == 2
    assert first.calls[1].at - first.calls[0].at >= 1.2
    started = [a.started_ms for a in r.record(d.id).attempts]
    assert started[1] - started[0] >= 1200


def test_the_retry_after_reaches_the_routers_sleep(tmp_path: Path) -> None:
    """The same floor with the router's sleep hook: a 7 s retry-after costs the test no time."""
    told = StepResult.failed(Reason.RATE_LIMITED, "slow down", retryable=True, retry_after=7.0)
    sleeps = Sleeps()
    r = rig(tmp_path, ScriptedTransport(told, told, DELIVERED), yaml={"first": "retries: 2"}, sleep=sleeps)
    assert r.send().status is Status.DELIVERED
    assert sleeps.waits == [7.0, 7.0]


def test_no_retry_is_waited_for_past_the_deadline(tmp_path: Path) -> None:
    """A retry-after longer than what is left of the deadline: the step gives up at once and the
    next one is tried, rather than sleeping into a deadline that would forbid the retry."""
    told = StepResult.failed(Reason.RATE_LIMITED, "slow down", retryable=True, retry_after=5.0)
    first, second = ScriptedTransport(told, DELIVERED), ScriptedTransport(DELIVERED)
    r = rig(tmp_path, first, second, yaml={"first": "retries: 3", "target": "deadline: 2s"})
    t0 = time.monotonic()
    d = r.send()
    assert time.monotonic() - t0 < 1.5
    assert len(first.calls) == 1 and d.via == "memory_file"


# -- the deadline and timeouts ------------------------------------------------------------------


def test_the_deadline_is_shared_a_later_step_gets_only_what_is_left(tmp_path: Path) -> None:
    hang = Act(DELIVERED, takes=10)
    first, second = ScriptedTransport(hang), ScriptedTransport(hang)
    r = rig(
        tmp_path,
        first,
        second,
        yaml={"first": "timeout: 600ms", "second": "timeout: 10s", "target": "deadline: 1s"},
    )
    t0 = time.monotonic()
    d = r.send()
    elapsed = time.monotonic() - t0
    assert 0.55 <= first.calls[0].remaining <= 0.6  # its own timeout: less than the deadline
    assert 0.2 <= second.calls[0].remaining <= 0.45  # what the deadline left, not its 10s timeout
    assert elapsed < 1.5
    assert d.status is Status.QUEUED
    assert outcomes(r.record(d.id).attempts) == [
        ("command", "failed", "timeout"),
        ("memory_file", "failed", "timeout"),
    ]


def test_a_step_reached_after_the_deadline_is_journaled_not_tried(tmp_path: Path) -> None:
    second = ScriptedTransport(DELIVERED)
    r = rig(tmp_path, ScriptedTransport(Act(DELIVERED, takes=10)), second, yaml={"target": "deadline: 500ms"})
    d = r.send()
    assert second.calls == [] and d.status is Status.QUEUED
    (timed_out, not_tried) = r.record(d.id).attempts
    assert (timed_out.outcome, timed_out.reason) == (Outcome.FAILED, Reason.TIMEOUT)
    assert (not_tried.transport, not_tried.outcome, not_tried.reason) == ("memory_file", "failed", "deadline")
    assert not_tried.detail == "not tried: the 0.5s deadline ran out"


def test_a_timeout_before_the_message_left_is_a_retryable_failure(tmp_path: Path) -> None:
    first = ScriptedTransport(Act(DELIVERED, takes=10), DELIVERED)
    r = rig(tmp_path, first, yaml={"first": "timeout: 300ms, retries: 1"}, sleep=Sleeps())
    d = r.send()
    assert d.status is Status.DELIVERED and len(first.calls) == 2
    (timed_out, _) = r.record(d.id).attempts
    assert (timed_out.outcome, timed_out.reason, timed_out.retryable) == (Outcome.FAILED, "timeout", True)


def test_a_timeout_after_the_message_left_is_ambiguous_and_not_retried(tmp_path: Path) -> None:
    first = ScriptedTransport(Act(DELIVERED, sent=True, takes=10), DELIVERED)
    r = rig(
        tmp_path,
        first,
        ScriptedTransport(REJECTED),
        yaml={"first": "timeout: 300ms, retries: 1"},
        sleep=Sleeps(),
    )
    d = r.send()
    assert d.status is Status.AMBIGUOUS and len(first.calls) == 1
    (timed_out, _) = r.record(d.id).attempts
    assert (timed_out.outcome, timed_out.reason) == (Outcome.AMBIGUOUS, "timeout")
    assert timed_out.detail is not None and timed_out.detail.endswith("after sending")


def test_a_connection_lost_after_the_message_left_is_ambiguous_not_failed(tmp_path: Path) -> None:
    lost = TransportError("the gateway went away", reason=Reason.CONNECTION_LOST, retryable=True)
    first = ScriptedTransport(Act(lost, sent=True), DELIVERED)
    r = rig(tmp_path, first, ScriptedTransport(REJECTED), yaml={"first": "retries: 2"}, sleep=Sleeps())
    d = r.send()
    assert d.status is Status.AMBIGUOUS and len(first.calls) == 1  # not retried: it may have arrived
    (gone, _) = r.record(d.id).attempts
    assert (gone.outcome, gone.reason, gone.detail) == (
        Outcome.AMBIGUOUS,
        "connection_lost",
        "the gateway went away",
    )


def test_a_connection_lost_before_the_message_left_is_a_failure_and_retried(tmp_path: Path) -> None:
    lost = TransportError("the gateway went away", reason=Reason.CONNECTION_LOST, retryable=True)
    first = ScriptedTransport(lost, DELIVERED)
    r = rig(tmp_path, first, yaml={"first": "retries: 2"}, sleep=Sleeps())
    d = r.send()
    assert d.status is Status.DELIVERED and len(first.calls) == 2
    assert outcomes(r.record(d.id).attempts)[0] == ("command", "failed", "connection_lost")


# -- stop -------------------------------------------------------------------------------------


def test_stop_lets_the_attempt_end_then_starts_no_retry_and_no_next_step(tmp_path: Path) -> None:
    first, second = ScriptedTransport(REFUSED, DELIVERED), ScriptedTransport(DELIVERED)
    r = rig(tmp_path, first, second, yaml={"first": "retries: 3"}, sleep=Sleeps())
    r.router.on_attempt = lambda _env, _a: r.router.stop()  # a SIGTERM while the attempt runs
    d = r.send()
    assert len(first.calls) == 1 and second.calls == []
    assert d.status is Status.QUEUED
    record = r.record(d.id)
    assert record.status is Status.QUEUED and outcomes(record.attempts) == [
        ("command", "failed", "connection_refused")
    ]


def test_stop_during_the_wait_before_a_retry_cuts_the_wait_short(tmp_path: Path) -> None:
    told = StepResult.failed(Reason.RATE_LIMITED, "slow down", retryable=True, retry_after=20.0)
    first, second = ScriptedTransport(told, DELIVERED), ScriptedTransport(DELIVERED)
    r = rig(tmp_path, first, second, yaml={"first": "retries: 1"})

    async def send_then_stop(router: Router) -> list[Delivery]:
        asyncio.get_running_loop().call_later(0.3, router.stop)
        return await router.send(router.envelopes(["t"], "hello", 0))

    t0 = time.monotonic()
    (d,) = r.drive(send_then_stop)
    assert time.monotonic() - t0 < 3
    assert len(first.calls) == 1 and second.calls == []
    assert r.record(d.id).status is Status.QUEUED


# -- outbox retries and interrupted attempts ------------------------------------------------------


def interrupted(r: Rig, transport: str) -> str:
    """A message whose sender died during an attempt of `transport`: the attempt started and
    never ended, the message still queued and its claim free."""
    env = Envelope(sender="tester", target="t", body="hello")
    r.journal.add_message(env, expires_in_s=3600)
    run = r.journal.begin_run(env.id)
    r.journal.start_attempt(
        env.id, Attempt(step=2, transport=transport, outcome=Outcome.STARTED, started_ms=now_ms(), run=run)
    )
    return env.id


def test_an_interrupted_attempt_whose_resend_is_harmless_is_resent(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(DELIVERED), resend_window=lambda _transport: 3600.0)
    message = interrupted(r, "memory_file")
    d = r.drive(lambda router: router.retry(r.record(message)))
    assert isinstance(d, Delivery) and d.status is Status.DELIVERED
    record = r.record(message)
    assert record.status is Status.DELIVERED and record.runs == 2
    (was, now) = record.attempts
    assert (was.run, was.outcome, was.reason, was.retryable) == (1, Outcome.AMBIGUOUS, "interrupted", True)
    assert (now.run, now.outcome) == (2, Outcome.DELIVERED)


def test_an_interrupted_attempt_that_may_have_arrived_waits_for_a_person(tmp_path: Path) -> None:
    """The router's window, not the table's: memory_file's own would make a resend harmless."""
    first, second = ScriptedTransport(DELIVERED), ScriptedTransport()
    r = rig(tmp_path, first, second, resend_window=lambda _transport: 0.0)
    message = interrupted(r, "memory_file")
    assert_not_retried(r, message, Reason.AMBIGUOUS)
    assert first.calls == [] and second.calls == []
    record = r.record(message)
    assert record.status is Status.AMBIGUOUS
    assert [(a.outcome, a.reason, a.retryable) for a in record.attempts] == [
        (Outcome.AMBIGUOUS, "interrupted", False)
    ]
    d = r.drive(lambda router: router.retry(r.record(message), manual=True))  # a person's call
    assert isinstance(d, Delivery) and d.status is Status.DELIVERED and len(first.calls) == 1


def test_retry_leaves_a_message_delivered_since_it_was_listed(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(REJECTED, DELIVERED), ScriptedTransport(REJECTED))
    d = r.send()
    listed = r.record(d.id)
    r.journal.set_status(d.id, Status.DELIVERED)  # another flusher got there first
    assert_not_retried(r, listed.id, Reason.NO_LONGER_QUEUED, listed)
    assert len(r.first.calls) == 1


def test_retry_leaves_a_message_another_process_is_sending(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(REJECTED, DELIVERED), ScriptedTransport(REJECTED))
    d = r.send()
    claim = r.journal.claim(d.id)
    assert claim is not None
    try:
        assert_not_retried(r, d.id, Reason.IN_FLIGHT)
    finally:
        claim.release()
    assert len(r.first.calls) == 1 and r.record(d.id).status is Status.QUEUED


def test_a_harmless_resend_that_comes_too_late_waits_for_a_person(tmp_path: Path) -> None:
    """Recovered as harmless to resend (inside its window then), retried once the window of the
    transport the router uses has passed: ambiguous, not resent."""
    from clawrelay.recovery import recover

    second = ScriptedTransport(DELIVERED)
    r = rig(tmp_path, ScriptedTransport(DELIVERED), second, resend_window=lambda _transport: 0.0)
    message = interrupted(r, "memory_file")
    assert recover(r.journal, lambda _transport, _started: True) == [message]
    assert r.record(message).status is Status.QUEUED
    assert_not_retried(r, message, Reason.AMBIGUOUS)
    record = r.record(message)
    assert record.status is Status.AMBIGUOUS and not record.attempts[0].retryable
    assert r.first.calls == [] and second.calls == []


def test_a_retry_keeps_the_via_the_message_was_sent_with(tmp_path: Path) -> None:
    first, second = ScriptedTransport(DELIVERED), ScriptedTransport(REFUSED, DELIVERED)
    r = rig(tmp_path, first, second)
    (d,) = r.drive(lambda router: router.send(router.envelopes(["t"], "hello", 0), via="memory_file"))
    assert d.status is Status.QUEUED and r.record(d.id).only_via == "memory_file"
    again = r.drive(lambda router: router.retry(r.record(d.id)))
    assert again.status is Status.DELIVERED and again.via == "memory_file"
    assert first.calls == []  # the step the sender left out was never tried


def assert_not_retried(r: Rig, message_id: str, why: Reason, record: MessageRecord | None = None) -> None:
    with pytest.raises(NotRetried) as caught:
        r.drive(lambda router: router.retry(record or r.record(message_id)))
    assert (caught.value.message_id, caught.value.reason) == (message_id, why)


# -- what the router is given ------------------------------------------------------------------


def test_an_event_no_step_delivered_ends_failed_not_queued(tmp_path: Path) -> None:
    r = rig(tmp_path, ScriptedTransport(REFUSED), ScriptedTransport(REJECTED))
    plans = {"t": r.routes.plan("t")}
    (d,) = r.drive(lambda router: router.deliver(router.envelopes(["t"], "wake up", 0, kind="event"), plans))
    assert (d.status, d.exit_code) == (Status.FAILED, 1)
    assert r.record(d.id).status is Status.FAILED and r.journal.outbox() == []


def test_transports_may_be_a_lookup_by_name(tmp_path: Path) -> None:
    asked: list[str] = []
    table = {"command": ScriptedTransport(REJECTED), "memory_file": ScriptedTransport(DELIVERED)}

    def lookup(name: str) -> ScriptedTransport:
        asked.append(name)
        return table[name]

    r = rig(tmp_path, ScriptedTransport(), ScriptedTransport())
    router = Router(r.routes, r.journal, transports=lookup)
    (d,) = asyncio.run(router.send(router.envelopes(["t"], "hello", 0)))
    assert d.via == "memory_file" and asked == ["command", "memory_file"]


class Pool:
    """Stands in for a gateway pool or the host carriers: counts its closes."""

    def __init__(self) -> None:
        self.closed = 0

    def get(self, host: str, carrier: str) -> str:
        return f"{carrier} on {host}"

    async def aclose(self) -> None:
        self.closed += 1


def test_pools_given_are_the_ones_attempts_use_and_stay_open_for_their_giver(tmp_path: Path) -> None:
    gateways, carriers = Pool(), Pool()
    seen: list[object] = []

    class Looks(ScriptedTransport):
        async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
            seen.extend([ctx.gateways, ctx.carriers()])
            return DELIVERED

    r = rig(tmp_path, ScriptedTransport(REJECTED), Looks(), gateway_pool=gateways, host_carriers=carriers)
    assert r.send().status is Status.DELIVERED
    assert seen == [gateways, ["local on here"]]  # memory_file's carriers on the target's host
    assert (gateways.closed, carriers.closed) == (0, 0)


# -- the flusher over it ------------------------------------------------------------------------


def test_a_pass_goes_oldest_first_and_leaves_a_targets_rest_behind_the_first_not_delivered(
    tmp_path: Path,
) -> None:
    """One pass of the outbox (`outbox flush`, and `outbox retry` without an ID) over the router."""
    from clawrelay.flush import Flusher

    first, second = (
        ScriptedTransport(REJECTED, REJECTED, REJECTED),
        ScriptedTransport(REJECTED, REJECTED, REJECTED),
    )
    r = rig(tmp_path, first, second)
    ids = [r.send(f"m{i}").id for i in range(3)]  # each refused by both steps: all queued
    first.acts += [Act(DELIVERED), Act(REJECTED)]  # m0 goes through, m1 does not
    second.acts += [Act(REJECTED)]
    result = r.drive(lambda router: Flusher(router).once(now=True))
    assert [(d.id, d.status) for d in result.retried] == [(ids[0], Status.DELIVERED), (ids[1], Status.QUEUED)]
    assert result.skipped == [{"id": ids[2], "reason": Reason.BEHIND_UNDELIVERED, "behind": ids[1]}]
    assert (result.exit_code, [m.id for m in r.journal.outbox()]) == (1, ids[1:])


# -- the fleet's own-message retry ------------------------------------------------------------


def test_an_offered_message_not_delivered_from_here_stays_offered_never_queued_meanwhile(
    tmp_path: Path,
) -> None:
    """The fleet's relay of this machine tries its own offered message: not delivered, it ends
    `offered` in the run's own write. Passing through `queued` would let the local flusher send it
    while the fleet's entry still waits for another relay."""
    fail = StepResult.failed(Reason.TEMPFAIL, "exit 75", retryable=False)
    r = rig(tmp_path, ScriptedTransport(fail, fail), ScriptedTransport(fail, fail))
    first = r.send()
    assert first.status is Status.QUEUED
    r.journal.set_status(first.id, Status.OFFERED)
    with pytest.raises(NotRetried) as refused:  # the local flusher's retry: the fleet's to deliver
        r.drive(lambda router: router.retry(r.record(first.id)))
    assert refused.value.reason is Reason.OFFERED
    d = r.drive(lambda router: router.retry(r.record(first.id), offered=True))
    assert d.status is Status.OFFERED
    again = r.record(first.id)
    assert again.status is Status.OFFERED and again.runs == 2 and again.next_attempt_ms is None
