"""`clawrelay serve`: the resident relay (see clawrelay.relay)."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, duration_option, reported


def serve(
    interval: str = typer.Option("15s", "--interval", help="How often to look at the outbox again."),
    timeout: str = typer.Option(
        "3s", "--timeout", help="The limit per reachability check of the outbox's targets."
    ),
    config: str | None = ConfigOpt,
) -> None:
    """Run the relay: commands ride its warm connections, and it drains the outbox.

    In the foreground, until SIGTERM or Ctrl-C (the service runs it). While it runs, `send`,
    `event`, `exec`, `call`, `nodes`, `status` and `outbox retry|flush` run inside it when they
    find it on the state dir's socket (`--no-relay` or CLAWRELAY_RELAY=off: in their own
    process), with the same output, exit codes and journal; it keeps the routes parsed, one
    connection per gateway and ssh connections per host, and does what `outbox flush --watch`
    does. One relay per state dir: a second one exits 1. SIGTERM lets the attempts in flight
    finish, then exits 0.
    """
    from clawrelay import paths
    from clawrelay.cli.outbox import _report_rest
    from clawrelay.cli.render import verdict
    from clawrelay.flush import Pass
    from clawrelay.relay.server import serve as run_relay

    with reported(False):
        every = duration_option(interval, "--interval")
        probe_timeout = duration_option(timeout, "--timeout")
        home = paths.state_dir()

        def report(p: Pass) -> None:
            for d in p.retried:
                typer.echo(verdict(d))
            _report_rest(p)

        def ready(where: str) -> None:
            typer.echo(
                f"relay listening on {where} (pid {__import__('os').getpid()}); outbox every {interval}"
            )

        run_relay(home, config, interval=every, probe_timeout=probe_timeout, report=report, ready=ready)
        typer.echo("stopped")
