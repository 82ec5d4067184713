"""What every command shares: options, error reporting, JSON output, the journal and routes."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config import Routes
    from clawrelay.journal import Journal

T = TypeVar("T")
ConfigOpt = typer.Option(None, "--config", "-c", help="routes.yaml to use (else $CLAWRELAY_CONFIG, "
                         "./routes.yaml, the user config dir, the embedded demo); `builtin`: the embedded "
                         "demo routes.", show_default=False)
JsonOpt = typer.Option(False, "--json", help="One JSON document on stdout (stable shape, see docs/).")


def emit_json(data: Any) -> None:
    """One JSON document on stdout, with every secret revealed in this process masked."""
    from clawrelay.secrets import scrub

    typer.echo(scrub(json.dumps(data, ensure_ascii=False, indent=None)))


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """Turn a clawrelay error into one line on stderr (and a JSON error object) and its exit code.

    Every command runs inside it, so it is also where library logging gets its scrubbing handler:
    once a command starts, not for `--help`."""
    from clawrelay.errors import ClawrelayError
    from clawrelay.logs import configure
    from clawrelay.secrets import scrub

    configure()
    try:
        yield
    except ClawrelayError as e:
        message = scrub(e.message) or e.reason
        if as_json:
            emit_json({"error": {"reason": e.reason, "message": message}})
        typer.echo(f"clawrelay: {message}", err=True)
        raise typer.Exit(e.exit_code) from None


def duration_option(value: str, flag: str) -> float:
    """A duration given on the command line; a bad one is a usage error naming the option."""
    from clawrelay.config.durations import parse_duration
    from clawrelay.errors import UsageError

    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None


def carrier_option(via: str | None) -> str | None:
    from clawrelay.errors import UsageError

    if via not in (None, "node", "ssh", "local"):
        raise UsageError(f"--via: {via!r} is not a carrier (node, ssh or local)")
    return via


def remote_command(config: str | None, host: str, via: str | None,
                   timeout: str) -> tuple[Routes, str, float, Journal]:
    """What `exec` and `sync` start with: --via and --timeout checked, the routes, the host (a
    target stands for its host) and the journal the command is recorded in."""
    from clawrelay.remote.exec import host_name

    carrier_option(via)
    seconds = duration_option(timeout, "--timeout")
    routes = load(config)
    routes.reveal_secrets()  # a token typed into the command line is masked in its record too
    return routes, host_name(routes, host), seconds, open_journal()


def on_carriers(routes: Routes, journal: Journal, job: Callable[[HostCarriers], Awaitable[T]]) -> T:
    """Run one remote job (exec, sync) with the command's carriers opened, and closed after it."""
    import asyncio

    from clawrelay.carriers.hosts import opened

    async def go() -> T:
        async with opened(routes, journal.home) as carriers:
            return await job(carriers)

    return asyncio.run(go())


def load(config: str | None) -> Routes:
    from clawrelay.config import load_routes

    return load_routes(config)


def open_journal() -> Journal:
    import sqlite3

    from clawrelay import paths
    from clawrelay.errors import StateError
    from clawrelay.journal import Journal

    try:
        home = paths.state_dir()
        return Journal(home)
    except (OSError, sqlite3.Error) as e:
        where = getattr(e, "filename", None) or "the clawrelay state dir"
        raise StateError(f"cannot use {where}: {e.__class__.__name__}: {getattr(e, 'strerror', None) or e}"
                         " (set CLAWRELAY_HOME to a writable folder)") from None


def isatty_stdin() -> bool:
    return sys.stdin is None or sys.stdin.isatty()
