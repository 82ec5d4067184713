"""`clawrelay send TARGET [MESSAGE]`: the fallback chain, and the record of which path worked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from clawrelay.cli.common import (
    ConfigOpt,
    JsonOpt,
    duration_option,
    emit_json,
    isatty_stdin,
    load,
    open_journal,
    read_stdin_text,
    reported,
)

if TYPE_CHECKING:
    from clawrelay.config.routes import PlannedStep, Routes
    from clawrelay.outcome import Delivery


def _read_message(message: str | None) -> str:
    from clawrelay.errors import UsageError

    if message is None:
        if isatty_stdin():
            raise UsageError("no message: give MESSAGE or pipe it on stdin")
        message = read_stdin_text()
    if not message.strip():
        raise UsageError("empty message: nothing to send")
    return message


def send(
    target: str | None = typer.Argument(None, help="A target name, an alias, @group, or a,b,c."),
    message: str | None = typer.Argument(None, help="The text; read from stdin when omitted."),
    to: str | None = typer.Option(
        None, "--to", help="Targets (a,b,c or @group); then the only argument is the message."
    ),
    via: str | None = typer.Option(None, "--via", help="Use only this transport of the chain."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; send nothing."),
    explain: bool = typer.Option(False, "--explain", help="Add timings, carriers and reasons."),
    deadline: str | None = typer.Option(None, "--deadline", help="Override the chain's deadline (e.g. 30s)."),
    wait_reply: str | None = typer.Option(
        None,
        "--wait-reply",
        metavar="[DURATION]",
        show_default=False,
        help="Once delivered, wait this long (default 3m) for the agent's answer and print it; one "
        "target only. The message counts as delivered either way.",
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Send a message down the target's chain until one transport delivers it.

    A group (@name, a,b,c or --to) gets one message id per target, sent concurrently. Exit codes:
    0 delivered, 1 not delivered (kept in the outbox), 2 usage or config error, 3 unknown target,
    4 ambiguous (or only partly delivered to a group).
    """
    with reported(as_json):
        spec, message = _targets_and_message(target, message, to)
        routes = load(config)
        targets = routes.expand(spec)
        group = is_group(spec, targets)
        override = duration_option(deadline, "--deadline") if deadline is not None else None
        reply_wait = _reply_wait(wait_reply, group)
        if dry_run:
            _dry_run(routes, targets, via, override, as_json, group)
            return
        text = _read_message(message)
        # a --via the chain lacks is a usage error before anything is journaled
        plans = {name: routes.plan(name, via) for name in targets}
        raise typer.Exit(
            deliver(
                routes,
                spec,
                text,
                plans,
                only_via=via,
                override=override,
                as_json=as_json,
                explain=explain,
                reply_wait=reply_wait,
            )
        )


def _reply_wait(value: str | None, group: bool) -> float | None:
    from clawrelay.errors import UsageError

    if value is None:
        return None
    if group:
        raise UsageError("--wait-reply takes one target: the answer of one agent")
    return duration_option(value, "--wait-reply")


def _targets_and_message(target: str | None, message: str | None, to: str | None) -> tuple[str, str | None]:
    from clawrelay.errors import UsageError

    if to is None:
        if target is None:
            raise UsageError("no target: give TARGET (a name, @group or a,b,c) or --to")
        return target, message
    if message is not None:
        raise UsageError("with --to, give only the message (or pipe it on stdin)")
    return to, target


def is_group(spec: str, targets: list[str]) -> bool:
    return len(targets) > 1 or spec.strip().startswith("@") or "," in spec


def _dry_run(
    routes: Routes, targets: list[str], via: str | None, override: float | None, as_json: bool, group: bool
) -> None:
    from clawrelay.cli.render import plan_lines

    plans = []
    for name in targets:
        plan = routes.plan(name, via)
        deadline = override or routes.deadline(name)
        plans.append(
            {"target": name, "dry_run": True, "deadline_s": deadline, "plan": [s.to_json() for s in plan]}
        )
        if not as_json:
            typer.echo("\n".join(plan_lines(name, plan, deadline)))
    if as_json:
        emit_json(plans if group else plans[0])


def deliver(
    routes: Routes,
    spec: str,
    text: str,
    plans: dict[str, list[PlannedStep]],
    *,
    kind: str = "message",
    only_via: str | None = None,
    override: float | None,
    as_json: bool,
    explain: bool,
    reply_wait: float | None = None,
) -> int:
    """Journal and deliver one text to each target of `plans` (its chain, or an event's rungs;
    one batch when SPEC names a group), showing progress; the exit code of it all. Shared by
    `send` and `event`, which differ only in their plans and `kind`."""
    from clawrelay.cli.render import attempt_printer, verdict
    from clawrelay.envelope import inherited_hops
    from clawrelay.ids import new_id
    from clawrelay.journal import Batch
    from clawrelay.relay import context
    from clawrelay.router import Router
    from clawrelay.service.state import auto_retry_json, no_flusher_line

    targets = list(plans)
    group = is_group(spec, targets)
    batch = Batch(new_id(), spec.strip()) if group else None

    journal = open_journal()
    progress = None if as_json else attempt_printer(explain=explain, with_target=group)
    router = Router(routes, journal, on_attempt=progress, deadline=override, wait_reply=reply_wait)
    envelopes = router.envelopes(targets, text, inherited_hops(), kind=kind)
    if not as_json:
        for env in envelopes:
            typer.echo(f"→ {env.target} (id {env.id})")

    async def go() -> list[Delivery]:
        try:
            return await router.deliver(envelopes, plans, batch=batch, only_via=only_via)
        finally:
            await router.aclose()

    deliveries = context.run(go())
    if as_json:
        docs = [d.to_json() for d in deliveries]
        if batch is not None:  # the same as `clawrelay log --json` gives each record of the group
            docs = [{**doc, "batch": batch.to_json()} for doc in docs]
        auto_retry_json(deliveries, docs)  # queued: is a flusher there to retry it?
        emit_json(docs if group else docs[0])
    else:
        for d in deliveries:
            typer.echo(verdict(d, kind))
        if line := no_flusher_line(deliveries):
            typer.echo(line)
    codes = {d.exit_code for d in deliveries}
    if len(codes) == 1:
        return codes.pop()
    return 4  # a group where only some were delivered
