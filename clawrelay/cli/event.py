"""`clawrelay event TARGET TEXT`: a system event (`wake`) into the target's session."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, load, reported


def event(
    target: str = typer.Argument(..., help="A target name, an alias, @group, or a,b,c."),
    text: str = typer.Argument(..., help="The event's text, as the agent will see it."),
    mode: str = typer.Option(
        "now",
        "--mode",
        help="now: a heartbeat turn at once; next-heartbeat: the agent sees it on its next one.",
    ),
    via: str | None = typer.Option(
        None, "--via", help="Only `wake` (the gateway) or `system_event` (openclaw system event on the host)."
    ),
    explain: bool = typer.Option(False, "--explain", help="Add timings, carriers and reasons."),
    deadline: str | None = typer.Option(None, "--deadline", help="Override the deadline (e.g. 30s)."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Wake the target's agent with a system event: over its gateway (`wake`), else `openclaw
    system event` on its host through the host's carriers. Journaled like a message, never
    queued. Exit 0 delivered, 1 not, 2 usage, 3 unknown target, 4 ambiguous or partly delivered."""
    from clawrelay import events
    from clawrelay.cli.send import deliver
    from clawrelay.errors import UsageError

    with reported(as_json):
        if mode not in ("now", "next-heartbeat"):
            raise UsageError(f"--mode: {mode!r} is not now or next-heartbeat")
        if not text.strip():
            raise UsageError("empty event: nothing to send")
        override = duration_option(deadline, "--deadline") if deadline is not None else None
        routes = load(config)
        targets = routes.expand(target)
        plans = {name: events.plan(routes, name, mode, via) for name in targets}  # type: ignore[arg-type]
        raise typer.Exit(
            deliver(
                routes,
                target,
                text,
                plans,
                kind="event",
                override=override,
                as_json=as_json,
                explain=explain,
            )
        )
