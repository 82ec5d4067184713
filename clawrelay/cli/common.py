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


def _or_root_config(ctx: typer.Context, value: str | None) -> str | None:
    """A command's --config, else the one given before the command (`clawrelay -c FILE send …`)."""
    if value is not None:
        return value
    root = ctx.find_root()
    return root.params.get("config") if root is not ctx else None


ConfigOpt = typer.Option(
    None,
    "--config",
    "-c",
    show_default=False,
    callback=_or_root_config,
    metavar="FILE",
    help="routes.yaml to use (else `clawrelay -c FILE` before the command, "
    "$CLAWRELAY_CONFIG, ./routes.yaml, the user config dir, the embedded demo); "
    "`builtin`: the embedded demo routes.",
)
JsonOpt = typer.Option(False, "--json", help="One JSON document on stdout (stable shape, see docs/).")


def emit_json(data: Any) -> None:
    """One JSON document on stdout, with every secret revealed in this process masked."""
    from clawrelay.secrets import scrub

    typer.echo(scrub(json.dumps(data, ensure_ascii=False, indent=None)))


MAX_ERROR = 400  # characters of an error line: a hostile argument is not echoed whole


def one_line(text: str, limit: int = MAX_ERROR) -> str:
    """Text for one line of stderr: no line breaks or control characters, at most `limit` long."""
    flat = "".join(" " if ch < " " or ch in "\x7f\x85\u2028\u2029" else ch for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """Turn any failure into one line on stderr (and a JSON error object) and its exit code.

    Every command runs inside it, so it is also where library logging gets its scrubbing handler:
    once a command starts, not for `--help`. A failure that is not a clawrelay error is a bug:
    still one line (exit 1), and its traceback only with CLAWRELAY_LOG=debug."""
    import os

    import click

    from clawrelay.errors import ClawrelayError, Reason
    from clawrelay.logs import LEVEL_ENV, configure
    from clawrelay.secrets import scrub

    configure()
    try:
        yield
    except ClawrelayError as e:
        _fail(e.reason, one_line(scrub(e.message) or e.reason), e.exit_code, as_json)
    except KeyboardInterrupt:
        _fail(Reason.INTERRUPTED, "interrupted", 130, as_json)
    except (typer.Exit, typer.Abort, click.ClickException):
        raise
    except Exception as e:
        if os.environ.get(LEVEL_ENV, "").lower() == "debug":
            raise
        text = one_line(scrub(f"{e.__class__.__name__}: {e}") or "")
        _fail(
            Reason.INTERNAL_ERROR,
            f"internal error (a bug in clawrelay): {text}; CLAWRELAY_LOG=debug shows where",
            1,
            as_json,
        )


def _fail(reason: str, message: str, code: int, as_json: bool) -> None:
    if as_json:
        emit_json({"error": {"reason": reason, "message": message}})
    typer.echo(f"clawrelay: {message}", err=True)
    raise typer.Exit(code) from None


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


def remote_command(
    config: str | None, host: str, via: str | None, timeout: str
) -> tuple[Routes, str, float, Journal]:
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
    from clawrelay.carriers.hosts import open_carriers
    from clawrelay.relay import context

    async def go() -> T:
        async with open_carriers(routes, journal.home) as carriers:
            return await job(carriers)

    return context.run(go())


def load(config: str | None) -> Routes:
    from clawrelay.relay import context

    resident = context.resident()
    if resident is not None:  # inside a relay: parsed once per version of the file
        routes: Routes = resident.load(config)
        return routes
    from clawrelay.config import load_routes

    return load_routes(config)


def open_journal() -> Journal:

    from clawrelay import paths
    from clawrelay.errors import StateError
    from clawrelay.journal import Journal

    try:
        home = paths.state_dir()
        journal = Journal(home)
    except OSError as e:  # the locks folder (the journal's own failures are StateErrors already)
        where = getattr(e, "filename", None) or "the clawrelay state dir"
        raise StateError(
            f"cannot use {where}: {e.__class__.__name__}: {getattr(e, 'strerror', None) or e}"
            " (set CLAWRELAY_HOME to a writable folder)"
        ) from None
    from clawrelay.relay import context

    context.at_end(journal.close)  # inside a relay the process outlives the command
    for notice in journal.notices:
        typer.echo(f"clawrelay: warning: {notice}", err=True)
    if journal.open_attempts():  # a sender may have died mid-attempt: settle that before anything reads it
        from clawrelay.recovery import recover

        recover(journal)
    return journal


def read_stdin_text(limit: int = 16 * 2**20) -> str:
    """All of stdin as UTF-8 text; anything else is one usage error, not a traceback."""
    from clawrelay.errors import UsageError

    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"stdin holds more than {limit // 2**20} MiB: too long for a message")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"stdin is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


def isatty_stdin() -> bool:
    return sys.stdin is None or sys.stdin.isatty()
