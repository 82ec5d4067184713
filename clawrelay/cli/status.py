"""`clawrelay status`: each target's ways reachable now, its last delivery, its outbox; each host."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, emit_json, load, open_journal, reported

if TYPE_CHECKING:
    from clawrelay.status import HostStatus, TargetStatus


def status(
    target: str | None = typer.Argument(None, help="One target, alias or @group; default all."),
    timeout: str = typer.Option("3s", "--timeout", help="How long each check may take (all run at once)."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Which transports of each target are reachable now (checked at once, nothing sent), the
    last path that delivered and when, and what waits in its outbox; for each host (all, or
    TARGET's), whether its gateway is up, its node connected, its ssh answering. Exit 0 when
    every target has a way that works now, 1 when some have none."""
    from clawrelay.relay import context
    from clawrelay.status import survey

    with reported(as_json):
        seconds = duration_option(timeout, "--timeout")
        routes = load(config)
        names = routes.expand(target) if target else list(routes.config.targets)
        journal = open_journal()
        journal.expire()
        targets, hosts = context.run(survey(routes, journal, names, seconds, all_hosts=target is None))
        ok = all(t.reachable for t in targets)
        from clawrelay.relay.client import ask_stat

        relay = ask_stat(str(journal.home))
        if as_json:
            emit_json(
                {
                    "ok": ok,
                    "targets": [t.to_json() for t in targets],
                    "hosts": [h.to_json() for h in hosts],
                    "relay": relay,
                }
            )
        else:
            _show(targets, hosts)
            typer.echo(_relay_line(relay))
        raise typer.Exit(0 if ok else 1)


def _relay_line(relay: dict[str, object]) -> str:
    if not relay.get("running"):
        return "relay: not running (commands run in their own process; `clawrelay serve` starts one)"
    gateways = relay.get("gateways") or {}
    assert isinstance(gateways, dict)
    up = ", ".join(f"{n} {'connected' if c else 'not connected'}" for n, c in sorted(gateways.items()))
    return f"relay: running (pid {relay.get('pid')}, up {relay.get('uptime_s')}s)" + (
        f"; gateways: {up}" if up else ""
    )


def _show(targets: list[TargetStatus], hosts: list[HostStatus]) -> None:
    from clawrelay.cli.render import ago
    from clawrelay.secrets import scrub

    width = max(len(t.target) for t in targets)
    for t in targets:
        ways = ", ".join(t.reachable) or "nothing reachable"
        last = t.last
        seen = f"last delivered via {last['via']} {ago(int(last['at_ms']))}" if last else "never delivered"
        waiting = ", ".join(f"{n} {k}" for k, n in t.waiting.items() if n) or "nothing"
        typer.echo(f"{t.target:<{width}}  now: {ways}  ·  {seen}  ·  outbox: {waiting}")
        for c in t.steps:
            if not c.ok:
                typer.echo(scrub(f"{'':<{width}}    ✗ {c.step} {c.transport}: {c.detail} ({c.reason})"))
    for h in hosts:
        parts = [f"{c.subject} {'up' if c.ok else 'DOWN'}" for c in h.checks]
        typer.echo(f"host {h.host}: {', '.join(parts) or 'no carrier'}")
        for c in h.checks:
            if not c.ok:
                typer.echo(scrub(f"    ✗ {c.subject}: {c.detail} ({c.reason})"))
