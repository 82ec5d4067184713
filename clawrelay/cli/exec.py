"""`clawrelay exec HOST [options] -- ARGV…`: the remote exit code is clawrelay's exit code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import typer

from clawrelay.cli.common import (
    ConfigOpt,
    JsonOpt,
    carrier_option,
    duration_option,
    emit_json,
    load,
    open_journal,
    reported,
)

if TYPE_CHECKING:
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config import Routes
    from clawrelay.journal import Journal

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
    import asyncio
    import sys

    from clawrelay.errors import TransportError

    with reported(as_json):
        carrier_option(via)
        seconds = duration_option(timeout, "--timeout")
        routes = load(config)
        from clawrelay.remote.exec import host_name

        name = host_name(routes, host)
        journal = open_journal()
        try:
            result = asyncio.run(_run(routes, journal, name, argv, via, cwd, seconds, shell, detach))
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


async def _run(routes, journal, host, argv, via, cwd, timeout, shell, detach):  # type: ignore[no-untyped-def]
    from clawrelay.remote.exec import run_exec

    async with host_carriers(routes, journal) as carriers:
        return await run_exec(
            routes,
            journal,
            carriers,
            host,
            argv,
            via=via,
            cwd=cwd,
            timeout=timeout,
            shell=shell,
            detach=detach,
        )


@asynccontextmanager
async def host_carriers(routes: Routes, journal: Journal) -> AsyncIterator[HostCarriers]:
    """Carriers for one command, with gateway connections opened only if a node is used."""
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.openclaw.pool import GatewayPool

    pool: GatewayPool | None = None

    def gateways() -> GatewayPool:
        nonlocal pool
        pool = pool or GatewayPool(journal.home)
        return pool

    carriers = HostCarriers(routes, gateways)
    try:
        yield carriers
    finally:
        await carriers.aclose()
        if pool is not None:
            await pool.aclose()
