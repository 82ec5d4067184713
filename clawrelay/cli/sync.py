"""`clawrelay sync REPO --to HOST`: clone or fast-forward a repository on a host; exit 0, or 1 with why."""

from __future__ import annotations

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, on_carriers, remote_command, reported


def sync(
    repo: str = typer.Argument(
        ..., help="A git URL, or a local checkout (its origin, else a bundle over ssh)."
    ),
    to: str = typer.Option(..., "--to", help="The host (or a target, for its host)."),
    dest: str | None = typer.Option(None, "--dest", help="Checkout path on the host (default ~/src/NAME)."),
    branch: str | None = typer.Option(
        None, "--branch", help="Branch (default: the checkout's or the origin's)."
    ),
    link: str | None = typer.Option(None, "--link", help="Point this symlink on the host at the checkout."),
    via: str | None = typer.Option(None, "--via", help="Only this carrier: node, ssh or local."),
    timeout: str = typer.Option("5m", "--timeout", help="The whole sync within this."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Clone REPO on a host or fast-forward it; a dirty or diverged checkout is reported, not overwritten."""
    from clawrelay.remote.sync import run_sync

    with reported(as_json):
        routes, host, seconds, journal = remote_command(config, to, via, timeout)
        result = on_carriers(
            routes,
            journal,
            lambda carriers: run_sync(
                routes,
                journal,
                carriers,
                repo,
                host,
                dest=dest,
                branch=branch,
                link=link,
                via=via,
                timeout=seconds,
            ),
        )
        if as_json:
            emit_json(result.to_json())
        else:
            typer.echo(result.summary())
