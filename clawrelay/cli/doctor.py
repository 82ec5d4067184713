"""`clawrelay doctor [TARGET]`: is every step of every chain ready, and if not, what fixes it."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, emit_json, reported


def doctor(
    target: str | None = typer.Argument(None, help="One target, alias or @group; default all."),
    timeout: str = typer.Option("10s", "--timeout", help="The limit for each probe."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Check the routes, the secrets and each step's gateway, node, host, workspace and bot, for real.
    One line per check: ok, or what is wrong and the command that fixes it. Exit 0 all ok, 1 not.
    Nothing is sent to any agent."""
    import asyncio

    from clawrelay.config import check_routes
    from clawrelay.doctor import diagnose, proxies, secret_sources
    from clawrelay.probes.check import Check
    from clawrelay.reasons import Reason
    from clawrelay.secrets import scrub

    with reported(as_json):
        seconds = duration_option(timeout, "--timeout")
        source, routes, errors = check_routes(config)
        if routes is None or errors:
            checks = [Check("config", False, e, reason=Reason.CONFIG) for e in errors]
        else:
            c = routes.config
            names = routes.expand(target) if target else list(c.targets)
            checks = [
                Check(
                    "config",
                    True,
                    f"{routes.source}: {len(c.targets)} targets, {len(c.gateways)} "
                    f"gateways, {len(c.hosts)} hosts",
                ),
                proxies(),
            ]
            checks += secret_sources(routes)  # where each secret comes from, never its value
            checks += asyncio.run(diagnose(routes, names, seconds))
        if target is None:  # the machine's own: does anything retry what waits in the outbox?
            from clawrelay.service.state import flusher_check

            checks.append(flusher_check())
        ok = all(ch.ok for ch in checks)
        if as_json:
            emit_json({"ok": ok, "source": source, "checks": [ch.to_json() for ch in checks]})
        else:
            for ch in checks:
                for line in ch.lines():  # a gateway's or Telegram's own words: never with a secret
                    typer.echo(scrub(line))
        raise typer.Exit(0 if ok else 1)
