"""`clawrelay exec HOST [options] -- ARGV…`: the remote exit code is clawrelay's exit code."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, on_carriers, remote_command, reported

UNREACHABLE_EXIT = 255  # as ssh(1) says "could not run it there"


def exec_(
    host: str = typer.Argument(..., help="A host from routes.yaml, or a target (its host)."),
    argv: list[str] = typer.Argument(..., help="The command and its arguments, after `--`."),  # noqa: B008
    via: str | None = typer.Option(None, "--via", help="Only this carrier: node, ssh or local."),
    cwd: str | None = typer.Option(
        None, "--cwd", help="Working folder on the host (~/ is that host's home)."
    ),
    timeout: str = typer.Option(
        "60s", "--timeout", help="Kill the command (on the host) after this; exit 124."
    ),
    shell: bool = typer.Option(False, "--shell", help="Run ARGV joined as one command line with sh -c."),
    detach: bool = typer.Option(False, "--detach", help="Start it under nohup and return its pid and log."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Run a command on a host: argv verbatim, proxies stripped, killed at the time limit, journaled."""
    import sys

    from clawrelay.errors import TransportError
    from clawrelay.remote.exec import run_exec

    with reported(as_json):
        routes, name, seconds, journal = remote_command(config, host, via, timeout)
        try:
            result = on_carriers(
                routes,
                journal,
                lambda carriers: run_exec(
                    routes,
                    journal,
                    carriers,
                    name,
                    argv,
                    via=via,
                    cwd=cwd,
                    timeout=seconds,
                    shell=shell,
                    detach=detach,
                ),
            )
        except TransportError as e:
            e.exit_code = UNREACHABLE_EXIT
            raise
        if as_json:
            emit_json(result.to_json())
        elif result.pid is not None:
            typer.echo(f"started on {result.host} via {result.carrier}: pid {result.pid}, log {result.log}")
        else:
            sys.stdout.buffer.write(result.stdout)
            sys.stdout.flush()
            sys.stderr.buffer.write(result.stderr)
            if result.timed_out:
                typer.echo(
                    f"clawrelay: killed on {result.host} at the {seconds:g}s limit (exit 124)", err=True
                )
        raise typer.Exit(result.exit_code if result.pid is None else 0)
