"""The `clawrelay` command. Thin: parse, call the core, render, exit code.

Only typer is imported here; each command imports what it needs when it runs, so
`clawrelay --help` does not pay for pydantic, YAML, SQLite or asyncio.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="clawrelay",
    help="Get a message, a command or a repository from one OpenClaw instance to another.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from clawrelay import __version__

        typer.echo(f"clawrelay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        show_default=False,
        metavar="FILE",
        help="routes.yaml for the command (`builtin`: the embedded demo); the command's own --config wins.",
    ),
) -> None:
    """Get a message, a command or a repository from one OpenClaw instance to another."""
    # kept in this context's params: every command's --config falls back to it (cli.common.ConfigOpt)


from clawrelay.cli import (  # noqa: E402
    doctor,
    event,
    exec,
    gateway,
    log,
    outbox,
    routes,
    send,
    service,
    skill,
    status,
    sync,
)

app.add_typer(routes.app, name="routes")
app.add_typer(outbox.app, name="outbox")
app.add_typer(skill.app, name="skill")
app.add_typer(service.app, name="service")
app.command("send")(send.send)
app.command("event")(event.event)
app.command("status")(status.status)
app.command("log")(log.log)
app.command("call")(gateway.call)
app.command("nodes")(gateway.nodes)
app.command("exec", context_settings={"ignore_unknown_options": True})(exec.exec_)
app.command("sync")(sync.sync)
app.command("doctor")(doctor.doctor)


def main() -> int:
    """Run the command; a usage mistake is one line on stderr and exit 2, like every other error."""
    import sys

    import click

    from clawrelay.cli.argv import with_optional_values

    try:
        code = app(args=with_optional_values(sys.argv[1:]), standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()
        return 2
    except click.UsageError as e:
        from clawrelay.cli.common import one_line

        where = e.ctx.command_path if e.ctx is not None else "clawrelay"
        typer.echo(f"clawrelay: {one_line(e.format_message())} (see: {where} --help)", err=True)
        return 2
    except click.ClickException as e:
        from clawrelay.cli.common import one_line

        typer.echo(f"clawrelay: {one_line(e.format_message())}", err=True)
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C outside a command's own handling
        typer.echo("clawrelay: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0
