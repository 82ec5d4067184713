"""`clawrelay outbox list|retry|flush|purge`: the messages nothing has delivered yet."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, emit_json, load, open_journal, reported

if TYPE_CHECKING:
    from clawrelay.claims import Claim
    from clawrelay.config.model import Fleet
    from clawrelay.config.routes import Routes
    from clawrelay.flush import Pass
    from clawrelay.journal import Journal, MessageRecord
    from clawrelay.outcome import Status
    from clawrelay.router import Router

T = TypeVar("T")

app = typer.Typer(help="Messages not delivered yet: list, retry, flush, purge.", no_args_is_help=True)


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include dead letters (expired)."),
    as_json: bool = JsonOpt,
) -> None:
    """Queued messages (retried by `outbox retry`) and ambiguous ones (yours to decide)."""
    with reported(as_json):
        journal = open_journal()
        journal.expire()
        records = journal.outbox(include_dead=all_)
        if as_json:
            emit_json([{**r.to_json(), "in_flight": journal.in_flight(r.id)} for r in records])
            return
        from clawrelay.cli.render import when

        if not records:
            typer.echo("outbox is empty")
        for r in records:
            state = str(r.status)
            if r.status.value == "offered":
                state += " to the fleet (the relay that reaches the target delivers it)"
            elif journal.in_flight(r.id):
                state += ", in flight"
            elif r.status.value == "queued" and r.next_attempt_ms:
                state += f", next retry {when(r.next_attempt_ms)}"
            if r.only_via:
                state += f", only via {r.only_via}"
            last = r.attempts[-1] if r.attempts else None
            why = f"  last: {last.transport} {last.outcome} ({last.reason})" if last else ""
            typer.echo(f"{r.id}  {when(r.created_ms)}  → {r.target}  {state}, {r.runs} runs{why}")


@app.command()
def retry(
    message_id: str | None = typer.Argument(None, metavar="[ID]", help="One message (id or unique prefix)."),
    now: bool = typer.Option(False, "--now", help="Ignore the backoff: retry every queued message."),
    explain: bool = typer.Option(False, "--explain", help="Add timings, carriers and reasons."),
    take_back: bool = typer.Option(
        False,
        "--take-back",
        help="With ID: withdraw a message offered to the fleet and take it back into this outbox "
        "(refused while a relay delivers it; Redis must answer).",
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Send queued messages again: those due after their backoff, all with --now, or one by ID.

    Without ID, one pass of `outbox flush`, a target at a time: a target's messages go one at a
    time, oldest first, once its oldest is due; one not delivered or being sent elsewhere keeps
    the target's newer ones waiting. Ambiguous messages (they may have arrived) are only retried
    by ID. Exit 0 when everything retried was delivered, 1 when some stay queued, 4 when some
    ended ambiguous.
    """
    from clawrelay.cli.render import attempt_printer, show_retry_start, verdict
    from clawrelay.errors import ClawrelayError, Reason, UsageError
    from clawrelay.flush import Flusher, Pass
    from clawrelay.outcome import Status
    from clawrelay.relay import context
    from clawrelay.router import Router

    with reported(as_json):
        routes = load(config)
        journal = open_journal()
        router = Router(routes, journal, on_attempt=None if as_json else attempt_printer(explain=explain))
        # a flush pass, one target at a time: each message's lines follow one another
        flusher = Flusher(router, concurrent_targets=1, on_start=None if as_json else show_retry_start)
        if message_id is None:
            # ambiguous ones are a person's decision: said, so nobody takes them for forgotten
            held: list[dict[str, object]] = [
                {"id": r.id, "reason": Reason.AMBIGUOUS}
                for r in journal.outbox()
                if r.status is Status.AMBIGUOUS
            ]
            result = context.run(_closing(router, flusher.once(now=now)))
            result.skipped[:0] = held
        else:
            result = Pass(expired=journal.expire())
            record = _find(journal, message_id)
            if record.status is Status.OFFERED:
                record, began = _take_back(journal, record, take_back, config)
                if began is not None:  # not resent: a person decides, knowing
                    back = ClawrelayError(
                        f"{record.id} is back here as ambiguous: {began}; `clawrelay outbox retry"
                        f" {record.id}` sends it again",
                        reason=Reason.AMBIGUOUS,
                    )
                    back.exit_code = 4
                    raise back
            if record.status not in (Status.QUEUED, Status.AMBIGUOUS):
                raise UsageError(f"{record.id} is {record.status}, not in the outbox")
            context.run(_closing(router, flusher.retry(record, result, manual=True)))
        if as_json:
            emit_json(result.to_json())
        else:
            for d in result.retried:
                typer.echo(verdict(d))
            for s in result.skipped:
                typer.echo(f"skipped {s['id']}: {str(s['reason']).replace('_', ' ')}")
            for e in result.errors:
                typer.echo(f"error {e['id']}: {e['message']}", err=True)
            for i in result.expired:
                typer.echo(f"expired {i}: now a dead letter")
            if not (result.retried or result.skipped or result.errors or result.expired):
                typer.echo("outbox is empty")
        raise typer.Exit(result.exit_code)


async def _closing(router: Router, work: Awaitable[T]) -> T:
    """`work`, then the router's connections closed, however it ends."""
    try:
        return await work
    finally:
        await router.aclose()


@app.command()
def flush(
    watch: bool = typer.Option(False, "--watch", help="Keep flushing until SIGTERM or Ctrl-C."),
    interval: str = typer.Option("15s", "--interval", help="With --watch: how often to look again."),
    now: bool = typer.Option(False, "--now", help="Ignore the backoff (one pass only)."),
    timeout: str = typer.Option("3s", "--timeout", help="With --watch: the limit per reachability check."),
    explain: bool = typer.Option(False, "--explain", help="Add timings, carriers and reasons."),
    exit_zero: bool = typer.Option(
        False,
        "--exit-zero",
        help="Exit 0 when the pass ran, whatever stays "
        "queued or ambiguous (for a scheduler that counts exit 1 as a failure).",
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Deliver what waits, oldest first, target by target: a target whose oldest message is in
    backoff waits, and one that fails keeps the rest of its messages for later. With --watch,
    again every interval, and a target that comes back (reachable again) is drained at once.
    SIGTERM or Ctrl-C lets the attempt in flight finish, then exits 0. Two flushers at once never
    deliver one message twice. Exit (one pass): 0 all delivered, 1 some still queued, 4 ambiguous
    (0 with --exit-zero). With --watch and --json: one JSON line per pass that did something.
    Every pass records when it finished (`clawrelay service status` shows it)."""
    from clawrelay.cli.render import attempt_printer, show_retry_start, verdict
    from clawrelay.errors import UsageError
    from clawrelay.flush import Flusher
    from clawrelay.journal import now_ms
    from clawrelay.relay import context
    from clawrelay.router import Router
    from clawrelay.service.state import WatcherLock, record_pass

    with reported(as_json):
        if now and watch:
            raise UsageError("--now is for one pass; --watch already drains a target once it is back")
        every = duration_option(interval, "--interval")
        probe_timeout = duration_option(timeout, "--timeout")
        routes = load(config)
        journal = open_journal()

        def report(p: Pass) -> None:
            if as_json:
                emit_json(p.to_json())
            else:
                _report_rest(p)

        router = Router(routes, journal, on_attempt=None if as_json else attempt_printer(explain=explain))
        flusher = Flusher(
            router,
            probe_timeout=probe_timeout,
            on_start=None if as_json else show_retry_start,
            on_done=None if as_json else lambda d: typer.echo(verdict(d)),
        )
        started = [now_ms()]

        def record_end(p: Pass) -> None:
            left = sum(n["queued"] for n in journal.waiting().values())
            record_pass(
                {**p.summary(), "left_queued": left},
                mode="watch" if watch else "once",
                started_ms=started[0],
                home=journal.home,
            )
            started[0] = now_ms()

        async def go() -> Pass | None:
            import asyncio

            loop = asyncio.get_running_loop()
            context.on_stop_signals(loop, router.stop)
            try:
                if watch:
                    if not as_json:
                        typer.echo(f"watching the outbox every {interval} (SIGTERM or Ctrl-C to stop)")
                    with WatcherLock(journal.home) as lock:  # while held: "a flusher runs"
                        lock.acquire(every)
                        await flusher.watch(every, report, on_pass=record_end)
                    return None
                return await flusher.once(now=now)
            finally:
                await router.aclose()

        result = context.run(go())
        if result is None:
            if not as_json:
                typer.echo("stopped")
            return
        record_end(result)
        if as_json:
            emit_json(result.to_json())
        else:
            _report_rest(result)
            if not (result.retried or result.skipped or result.errors or result.expired):
                typer.echo("outbox is empty")
        raise typer.Exit(0 if exit_zero else result.exit_code)


def _report_rest(p: Pass) -> None:
    """What a pass did besides the deliveries already shown as they ended."""
    from clawrelay.errors import Reason

    skipped: dict[str, int] = {}
    for s in p.skipped:
        if s["reason"] is not Reason.NO_LONGER_QUEUED:  # delivered by another: not waiting
            skipped[str(s["reason"])] = skipped.get(str(s["reason"]), 0) + 1
    for reason, n in skipped.items():
        typer.echo(f"{n} waiting ({reason.replace('_', ' ')})")
    for e in p.errors:
        typer.echo(f"error {e['id']}: {e['message']}", err=True)
    for i in p.expired:
        typer.echo(f"expired {i}: now a dead letter")


@app.command()
def purge(
    message_id: str = typer.Argument(..., metavar="ID", help="Message id or unique prefix."),
    take_back: bool = typer.Option(
        False,
        "--take-back",
        help="With ID: withdraw a message offered to the fleet and take it back into this outbox "
        "(refused while a relay delivers it; Redis must answer).",
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Take one message out of the outbox for good (the journal keeps its record as `purged`)."""
    from clawrelay.errors import UsageError
    from clawrelay.outcome import Status

    with reported(as_json):
        journal = open_journal()
        record = _find(journal, message_id)
        began = None
        if record.status is Status.OFFERED:
            record, began = _take_back(journal, record, take_back, config)
        if record.status not in (Status.QUEUED, Status.AMBIGUOUS, Status.DEAD):
            raise UsageError(f"{record.id} is {record.status}, not in the outbox")
        _set_status(journal, record, Status.PURGED)
        if as_json:
            emit_json({"id": record.id, "status": "purged", "may_have_arrived": began})
        else:
            typer.echo(f"purged {record.id} (→ {record.target})" + (f"; {began}" if began else ""))


OFFERED_NOTE = (
    "is offered to the fleet: the relay that reaches its target delivers it, and this machine's "
    "log will say who did (`clawrelay fleet status` shows who reaches what); `--take-back` "
    "withdraws it from the fleet and brings it back here"
)


def _take_back(
    journal: Journal, record: MessageRecord, asked: bool, config: str | None
) -> tuple[MessageRecord, str | None]:
    """An offered message, back in this machine's outbox when a person asks (`--take-back`); else
    it is the fleet's, and said so. It is withdrawn from the fleet first, so no relay delivers it
    too: refused while a relay delivers it, and when the fleet has its outcome already, that
    outcome is recorded instead. Back as `ambiguous`, with a run that says why, when an attempt
    began in the fleet and never ended (it may have arrived): the second item says so. Redis
    must answer: with its Redis gone for good, take `fleet:` out of routes.yaml first (nothing
    is left to withdraw it from). Its claim is held throughout, so neither this machine's relay
    (settling, offering) nor another command changes it meanwhile."""
    from clawrelay.errors import UsageError
    from clawrelay.outcome import Status

    if not asked:
        raise UsageError(f"{record.id} {OFFERED_NOTE}")
    claim = _claimed(journal, record)
    queued = False
    try:
        fresh = journal.by_id(record.id)
        if fresh is None or fresh.status is not Status.OFFERED:
            return fresh or record, None  # settled meanwhile: the caller says what it is now
        routes = load(config)
        fleet = routes.config.fleet
        note = None
        if fleet is not None:
            note = _withdraw(journal, fresh, fleet, routes)
        if note is None:
            journal.set_status(fresh.id, Status.QUEUED)
            queued = True
        return journal.by_id(fresh.id) or fresh, note
    finally:
        claim.release(finished=not queued)


def _withdraw(journal: Journal, record: MessageRecord, fleet: Fleet, routes: Routes) -> str | None:
    """Take an offered message out of the fleet, its claim held. None: withdrawn, nothing began;
    else why it may have arrived (recorded as an ambiguous run)."""
    import contextlib

    from clawrelay.cli.fleet import on_fleet
    from clawrelay.errors import ClawrelayError, Reason
    from clawrelay.fleet import shared_outbox as shared
    from clawrelay.fleet.member import node_name

    me = node_name(fleet, routes)
    try:
        w = on_fleet(fleet, lambda redis: shared.withdraw(redis, record))
    except ClawrelayError as e:
        if e.reason != Reason.FLEET_UNREACHABLE:
            raise
        hint = "if the fleet's Redis is gone for good, take `fleet:` out of routes.yaml first"
        raise ClawrelayError(
            f"{e.message}; {record.id} stays offered here: run this again when Redis answers ({hint})",
            reason=e.reason,
            fix=hint,
        ) from None
    if w.state == "held":
        raise ClawrelayError(
            f"{record.id} is being delivered by {w.holder.split(' ')[0]} right now: not taken back",
            reason=Reason.IN_FLIGHT,
            fix="its log says what came of it at the relay's next heartbeat",
        )
    if w.state == "settled":
        assert w.result is not None
        run = shared.settlement(record, w.result, me)
        if run is not None:
            journal.record_elsewhere([run])
        with contextlib.suppress(ClawrelayError):  # recorded here; the relay forgets it otherwise
            on_fleet(fleet, lambda redis: shared.forget(redis, record.id))
        raise ClawrelayError(
            f"{record.id} was not taken back: the fleet has its outcome ({w.result.status} by "
            f"{w.result.node}); `clawrelay log {record.id}` says so",
            reason=Reason.OFFERED,
        )
    if w.began is None:
        return None
    why = (
        f"{w.began.node} began delivering it ({', '.join(w.began.plan)}) and never said what came of it:"
        " it may have arrived"
    )
    run = shared.settlement(record, shared.Result("ambiguous", w.began.node, "", 0, why + "; taken back"), me)
    if run is not None:
        journal.record_elsewhere([run])
    return why


def _set_status(journal: Journal, record: MessageRecord, status: Status) -> None:
    """A person's change of a message's status, with its claim held (refused while it is sent)."""
    from clawrelay.outcome import Status

    claim = _claimed(journal, record)
    try:
        journal.set_status(record.id, status)
    finally:
        claim.release(finished=status is not Status.QUEUED)


def _claimed(journal: Journal, record: MessageRecord) -> Claim:
    """The message's claim, for a person's change of it; refused while it is being sent."""
    from clawrelay.errors import ClawrelayError, Reason

    claim = journal.claim(record.id)
    if claim is None:
        raise ClawrelayError(
            f"{record.id} is being sent right now; try again when it ends", reason=Reason.IN_FLIGHT
        )
    return claim


def _find(journal: Journal, message_id: str) -> MessageRecord:
    from clawrelay.errors import ClawrelayError, Reason, UsageError
    from clawrelay.journal import QUEUEABLE

    try:
        record = journal.get(message_id)
    except LookupError as e:
        raise UsageError(str(e)) from None
    if record is None:
        raise ClawrelayError(f"no message {message_id!r} in the journal", reason=Reason.NOT_FOUND)
    if record.kind != QUEUEABLE:
        raise UsageError(f"{record.id} is not a message but {record.kind!r}: those are never in the outbox")
    return record
