"""`clawrelay log`: each message, its attempts and the path that delivered it."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, one_line, open_journal, reported


def log(
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target (name or alias)."),
    last: int = typer.Option(20, "--last", "-n", min=1, help="How many of the newest messages."),
    explain: bool = typer.Option(True, "--explain/--brief", help="Timings, carriers and reasons."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Show recent messages, oldest first, with every attempt and why it ended as it did."""
    with reported(as_json):
        name = target
        if target is not None:
            from clawrelay.cli.common import load
            from clawrelay.errors import ClawrelayError

            try:
                name = load(config).resolve(target)
            except ClawrelayError:
                name = target  # a target since removed from the routes still has its history
        records = open_journal().recent(target=name, last=last)
        if as_json:
            emit_json([r.to_json() for r in records])
            return
        from clawrelay.cli.render import attempt_line, indent_lines, when
        from clawrelay.outcome import Status

        order = (Status.DELIVERED, Status.AMBIGUOUS, Status.QUEUED, Status.FAILED, Status.DEAD, Status.PURGED)

        if not records:
            typer.echo("no messages yet")
        batches: dict[str, list[str]] = {}
        for r in records:
            if r.batch:
                batches.setdefault(r.batch, []).append(str(r.status))
        batch = None
        for r in records:
            if r.batch != batch and r.batch:
                statuses = batches[r.batch]
                counts = ", ".join(f"{statuses.count(s)} {s}" for s in order if s in statuses)
                typer.echo(f"{r.kind} to {r.batch_to} (batch {r.batch}): {counts}")
            batch = r.batch
            via = f" via {r.via}" if r.via else ""
            what = "" if r.kind == "message" else f"{r.kind} `{one_line(r.body)}`  "
            typer.echo(
                f"{r.id}  {when(r.created_ms)}  {what}{r.sender} → {r.target}  {r.status}{via}"
                + (f"  ({r.runs} runs)" if r.runs > 1 else "")
            )
            run = 0
            for a in r.attempts:
                if a.run != run and r.runs > 1:
                    run = a.run
                    typer.echo(f"   run {run}:")
                typer.echo(attempt_line(a, explain=explain, prefix=" "))
            if r.reply:
                typer.echo(f"   reply: {indent_lines(r.reply)}")
