"""Human views of attempts, deliveries and plans. `--json` output does not come through here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from clawrelay.cli.common import one_line
from clawrelay.config.durations import format_duration
from clawrelay.config.routes import PlannedStep
from clawrelay.ids import short_id
from clawrelay.outcome import Attempt, Delivery, Outcome, ReplyWait, Status

if TYPE_CHECKING:
    from clawrelay.envelope import Envelope
    from clawrelay.journal import MessageRecord

MARK = {Outcome.DELIVERED: "✓", Outcome.FAILED: "✗", Outcome.AMBIGUOUS: "?", Outcome.STARTED: "…"}


def attempt_printer(*, explain: bool, with_target: bool = True) -> Callable[[Envelope, Attempt], None]:
    """The router's `on_attempt` for a human: each attempt on its line as it ends, so a slow
    chain shows where it is. `with_target` names the target on each line, for output where
    several targets' attempts follow one another."""

    def show(env: Envelope, attempt: Attempt) -> None:
        typer.echo(attempt_line(attempt, explain=explain, prefix=env.target if with_target else ""))

    return show


def show_retry_start(record: MessageRecord) -> None:
    """The line an outbox message's attempts follow: which message, and which run of it."""
    typer.echo(f"→ {record.target} (id {record.id}, run {record.runs + 1})")


def attempt_line(a: Attempt, *, explain: bool, prefix: str = "") -> str:
    what = str(a.outcome) + (f" ({a.reason})" if a.reason else "")
    line = f"{prefix}  {MARK[a.outcome]} {a.step} {a.transport:<14} {what}"
    if explain:
        retry = " retryable" if a.outcome is Outcome.FAILED and a.retryable else ""
        line = f"{line:<52} {a.elapsed_ms:>6} ms  {a.carrier or '-':<6}{retry}"
        if a.detail:
            line += f"  {one_line(a.detail, 2000)}"
    return line


def verdict(d: Delivery, kind: str = "message") -> str:
    if d.status is Status.DELIVERED:
        reply = f"\nreply: {indent_lines(d.reply)}" if d.reply else _no_reply(d)
        return f"delivered to {d.target} via {d.via} (id {d.id}){reply}"
    if d.status is Status.AMBIGUOUS:
        return (
            f"ambiguous: {d.target} may have it (id {d.id}); not retried automatically, "
            f"see clawrelay log --target {d.target}"
        )
    if d.status is Status.QUEUED:
        return f"not delivered to {d.target}: kept in the outbox (clawrelay outbox retry {short_id(d.id)})"
    return f"not delivered to {d.target} (id {d.id}): no way took the {kind}; it is not queued"


def _no_reply(d: Delivery) -> str:
    """Why `--wait-reply` has no answer to show (nothing when it was not asked for)."""
    why = (
        {
            ReplyWait.REPLIED: "the agent answered with no text",
            ReplyWait.NO_REPLY: (
                "none came in time; the run goes on there, and its answer stays in its session"
            ),
            ReplyWait.RUN_FAILED: f"the run ended without one: {one_line(d.reply_error or '')}",
            ReplyWait.LOST: f"the connection went before it came: {one_line(d.reply_error or '')}",
            ReplyWait.UNAVAILABLE: f"{d.via} carries no answer back",
        }.get(ReplyWait(d.reply_status))
        if d.reply_status
        else None
    )
    return f"\nno reply: {why}" if why else ""


def indent_lines(text: str) -> str:
    """A text of several lines under a label: each line after the first indented, so none of it can
    pass for a line of clawrelay's own."""
    return text.replace("\r", "").replace("\n", "\n       ")


def plan_lines(target: str, plan: list[PlannedStep], deadline: float) -> list[str]:
    out = [f"{target}: deadline {format_duration(deadline)}, nothing sent (dry run)"]
    for s in plan:
        via = f" via {','.join(s.carriers)}" if s.carriers else ""
        out.append(
            f"  {s.index} {s.transport:<14} timeout {format_duration(s.timeout)}, "
            f"retries {s.retries}, on ambiguous {s.on_ambiguous}{via}"
        )
    return out


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(ms: int) -> str:
    """How long ago, in the largest unit that fits: "12 s ago", "3 min ago", "2 h ago", "4 d ago"."""
    import time

    s = max(0, int(time.time() - ms / 1000))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"
