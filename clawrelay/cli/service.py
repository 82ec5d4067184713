"""`clawrelay service install|status|uninstall`: the flusher that retries what waits in the outbox."""

from __future__ import annotations

from typing import Any

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, emit_json, reported

app = typer.Typer(
    help="The flusher that retries queued messages: install, status, uninstall.", no_args_is_help=True
)


def _printer(as_json: bool) -> Any:
    def say(line: str) -> None:
        if not as_json:
            typer.echo(line)

    return say


@app.command()
def install(
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="systemd, launchd or cron (default: what this "
        "machine has: launchd on macOS, systemd where `systemctl --user` works, "
        "else an OpenClaw cron job).",
    ),
    interval: str | None = typer.Option(
        None,
        "--interval",
        help="How often it looks at the outbox (default 30s for a watcher, 5m for a cron job).",
    ),
    gateway: str | None = typer.Option(
        None,
        "--gateway",
        help="cron: the gateway to schedule on, a name in "
        "routes.yaml or a ws:// URL (default: the one on loopback).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what it would write and run; do nothing."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Install and start a flusher for this machine's outbox, so queued messages are retried without
    anyone running `outbox flush`. Installing again updates it in place (one unit, one job).
    Exit 0 installed (and, for a cron job, its first run ended well), 1 not, 2 usage."""
    from clawrelay.service import install as svc

    with reported(as_json):
        seconds = duration_option(interval, "--interval") if interval is not None else None
        plan = svc.plan(kind, config, seconds, gateway, dry_run=dry_run)
        say = _printer(as_json)
        if dry_run:
            if as_json:
                emit_json(plan.to_json(dry_run=True))
                return
            _print_plan(plan)
            return
        record = svc.install(plan, say)
        for note in plan.notes:
            say(f"note: {note}")
        if as_json:
            emit_json({**plan.to_json(dry_run=False), "installed": record})
        else:
            typer.echo(
                f"a {plan.kind} flusher is installed: `{_flush_words(plan.argv)}`; "
                "`clawrelay service status` shows how it is doing"
            )


def _flush_words(argv: list[str]) -> str:
    i = argv.index("outbox") if "outbox" in argv else 0
    return " ".join(["clawrelay", *argv[i:]])


def _print_plan(plan: Any) -> None:
    typer.echo(f"kind: {plan.kind} (nothing done: --dry-run)")
    for path, content in plan.files:
        typer.echo(f"would write {path}:")
        for line in content.decode().splitlines():
            typer.echo(f"  {line}")
    for argv in plan.commands:
        typer.echo(f"would run {' '.join(argv)}")
    if plan.kind == "cron":
        import json

        for method, params in plan.rpc:
            typer.echo(f"would call {method} on {plan.gateway} ({plan.url}) with {json.dumps(params)}")
        typer.echo(f"would run the job once now ({plan.gateway}: cron.run) and wait for it to end")
    for note in plan.notes:
        typer.echo(f"note: {note}")


@app.command()
def status(
    timeout: str = typer.Option("5s", "--timeout", help="The limit for asking the supervisor or gateway."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Which flusher is installed, whether it runs, its last pass, and what waits in the outbox.
    Exit 0 when a flusher runs (queued messages are retried automatically), 1 when none does."""
    from clawrelay.service import install as svc
    from clawrelay.service.state import ago

    with reported(as_json):
        doc = svc.status(config, duration_option(timeout, "--timeout"))
        if as_json:
            emit_json(doc)
        else:
            record = doc["installed"]
            typer.echo(
                f"installed: {record['kind']}, every {_every(record)}"
                if record
                else "installed: nothing (clawrelay service install)"
            )
            if doc["active_detail"]:
                typer.echo(f"  {doc['active_detail']}")
            w = doc["watcher"]
            typer.echo(f"watcher: pid {w['pid']}" if w else "watcher: none")
            last = doc["last_pass"]
            if last:
                by = last.get("service") or last["mode"]
                typer.echo(
                    f"last pass: ended {ago(last['finished_ms'])} ({by}): {last.get('delivered', 0)} "
                    f"delivered, {last.get('still_queued', 0)} tried and still queued, "
                    f"{last.get('ambiguous', 0)} ambiguous, {last.get('errors', 0)} errors, "
                    f"{last.get('left_queued', 0)} left in the outbox"
                )
            else:
                typer.echo("last pass: none recorded")
            box = doc["outbox"]
            typer.echo(
                f"outbox: {box['queued']} queued, {box['ambiguous']} ambiguous"
                if "queued" in box
                else f"outbox: {box['error']}"
            )
            verdict = "retried automatically" if doc["flusher_running"] else "NOT retried automatically"
            typer.echo(f"{verdict}: {doc['how']}")
        raise typer.Exit(0 if doc["flusher_running"] else 1)


def _every(record: dict[str, Any]) -> str:
    from clawrelay.service.state import every

    return every(float(record.get("interval_s") or 0))


@app.command()
def uninstall(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what it would remove; do nothing."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Stop and remove the flusher `service install` put in place (and only that). Exit 0 removed
    or nothing to remove."""
    from clawrelay.service import install as svc

    with reported(as_json):
        say = _printer(as_json)
        record = svc.uninstall(config, say, dry_run=dry_run)
        if as_json:
            emit_json(
                {
                    "removed": None if dry_run else record,
                    "dry_run": dry_run,
                    **({"would_remove": record} if dry_run else {}),
                }
            )
        elif record is None:
            typer.echo("nothing to remove: no flusher was installed by `clawrelay service install`")
        elif not dry_run:
            typer.echo(f"the {record['kind']} flusher is removed")
