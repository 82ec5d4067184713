"""The `clawrelay` command. Thin: parse, call the core, render, exit code.

The root is a plain click group that knows each command by its name and the first sentence of
its help, and builds only the command that runs (with typer, from its module in this package).
So `clawrelay --help` imports click and nothing else (not typer, pydantic, YAML, SQLite or
asyncio), and `clawrelay send` builds `send` alone, not every command. Each command imports
what it needs when it runs.
"""

from __future__ import annotations

from typing import Any

import click

HELP = "Get a message, a command or a repository from one OpenClaw instance to another."

# name: (module in clawrelay.cli, the command function or typer app in it, the first sentence
# of its help). The sentence is what `clawrelay --help` lists, without importing the command;
# tests/test_cli.py checks it against the command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "send": ("send", "send", "Send a message down the target's chain until one transport delivers it."),
    "event": (
        "event",
        "event",
        "Wake the target's agent with a system event: over its gateway (`wake`), else `openclaw "
        "system event` on its host through the host's carriers.",
    ),
    "status": (
        "status",
        "status",
        "Which transports of each target are reachable now (checked at once, nothing sent), the "
        "last path that delivered and when, and what waits in its outbox; for each host (all, or "
        "TARGET's), whether its gateway is up, its node connected, its ssh answering.",
    ),
    "log": (
        "log",
        "log",
        "Show recent messages, oldest first, with every attempt and why it ended as it did.",
    ),
    "call": (
        "gateway",
        "call",
        'Call one gateway method: {"ok":true,"payload":...} or {"ok":false,"error":{...}}; exit 0 / 1.',
    ),
    "nodes": (
        "gateway",
        "nodes",
        "Every node on the configured gateways: connected, approved, system.run allowed, last seen.",
    ),
    "exec": (
        "exec",
        "exec_",
        "Run a command on a host: argv verbatim, proxies stripped, killed at the time limit, journaled.",
    ),
    "sync": (
        "sync",
        "sync",
        "Clone REPO on a host or fast-forward it; a dirty or diverged checkout is reported, not overwritten.",
    ),
    "doctor": (
        "doctor",
        "doctor",
        "Check the routes, the secrets and each step's gateway, node, host, workspace and bot, for real.",
    ),
    "serve": (
        "serve",
        "serve",
        "Run the relay: commands ride its warm connections, and it drains the outbox.",
    ),
    "fleet": (
        "fleet",
        "app",
        "The relays that share a Redis: who is alive, who leads.",
    ),
    "routes": ("routes", "app", "Check and show the routes (routes.yaml)."),
    "outbox": ("outbox", "app", "Messages not delivered yet: list, retry, flush, purge."),
    "skill": ("skill", "app", "The OpenClaw skill: install it into a workspace, or print it."),
    "service": ("service", "app", "The flusher that retries queued messages: install, status, uninstall."),
}
CONTEXT_SETTINGS: dict[str, dict[str, Any]] = {"exec": {"ignore_unknown_options": True}}


def build_command(name: str) -> click.Command:
    """The click command `name` as typer builds it from its module (a group for a typer app)."""
    _without_typer_completion()
    import typer
    import typer.main

    module, attribute, _ = COMMANDS[name]
    # __import__, not importlib.import_module: `python -X importtime` sees only the former
    target = getattr(__import__(f"clawrelay.cli.{module}", fromlist=[attribute]), attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        group = typer.main.get_command(holder)
        assert isinstance(group, click.Group)
        return group.commands[name]
    holder.command(name, context_settings=CONTEXT_SETTINGS.get(name))(target)
    return typer.main.get_command(holder)


def _without_typer_completion() -> None:
    """Let typer load without its shell-completion machinery, which clawrelay never uses.

    typer.main imports typer.completion at its top (for the --install-completion options), and
    with it click.shell_completion, shellingham and typer's completion classes: two thirds of
    typer's import, ~20 ms of CPU a command on a 2-core benchmark machine. clawrelay turns those
    options off (add_completion=False everywhere), and a completion request
    (_CLAWRELAY_COMPLETE=...) reaches the root, a click group, which answers it with click's own
    completion. So typer.completion gets a stand-in holding the one name typer.main imports,
    which only an app with add_completion=True would call. Before typer is first imported only:
    typer already loaded (by a test, say) keeps its real module."""
    import sys

    if "typer" in sys.modules or "typer.completion" in sys.modules:
        return
    from types import ModuleType

    def get_completion_inspect_parameters() -> Any:
        raise RuntimeError("clawrelay builds its commands with add_completion=False")

    stand_in = ModuleType("typer.completion", _without_typer_completion.__doc__)
    stand_in.get_completion_inspect_parameters = get_completion_inspect_parameters  # type: ignore[attr-defined]
    sys.modules["typer.completion"] = stand_in


class Root(click.Group):
    """`clawrelay`: its commands are listed from COMMANDS and built when one is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = build_command(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listing = Listing(
            commands=[click.Command(name, help=text) for name, (_, _, text) in COMMANDS.items()]
        )
        listing.format_commands(ctx, formatter)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:  # as typer says it: with the commands it may have meant
            from difflib import get_close_matches

            matches = get_close_matches(args[0], list(COMMANDS)) if args else []
            if not matches:
                raise
            hint = f"Did you mean {', '.join(map(repr, matches))}?"
            raise click.UsageError(f"{e.message.rstrip('.')}. {hint}", e.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # Ctrl-C outside a command's own handling: exit 130, as typer did
            raise click.exceptions.Exit(130) from e


class Listing(click.Group):
    """The commands as `--help` lists them: in their order, each by the first sentence of its help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from clawrelay import __version__

        click.echo(f"clawrelay {__version__}")
        raise click.exceptions.Exit()


ROOT = Root(
    name="clawrelay",
    help=HELP,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=[
        click.Option(
            ["--version"], is_flag=True, is_eager=True, callback=_version, help="Print the version and exit."
        ),
        # kept in the root context's params: every command's --config falls back to it (cli.common.ConfigOpt)
        click.Option(
            ["--config", "-c"],
            metavar="FILE",
            help="routes.yaml for the command (`builtin`: the embedded demo); "
            "the command's own --config wins.",
        ),
        click.Option(
            ["--no-relay"],
            is_flag=True,
            help="Run the command in this process even when a relay (`clawrelay serve`) answers "
            "(also: CLAWRELAY_RELAY=off).",
        ),
    ],
)


def main(argv: list[str] | None = None) -> int:
    """Run the command (`argv`, else this process's); a usage mistake is one line on stderr and
    exit 2, like every other error."""
    import sys

    from clawrelay.cli.argv import with_optional_values

    args = sys.argv[1:] if argv is None else argv
    try:
        code = ROOT.main(args=with_optional_values(args), prog_name="clawrelay", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()
        return 2
    except click.UsageError as e:
        from clawrelay.cli.common import one_line

        where = e.ctx.command_path if e.ctx is not None else "clawrelay"
        click.echo(f"clawrelay: {one_line(e.format_message())} (see: {where} --help)", err=True)
        return 2
    except click.ClickException as e:
        from clawrelay.cli.common import one_line

        click.echo(f"clawrelay: {one_line(e.format_message())}", err=True)
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C outside a command's own handling
        click.echo("clawrelay: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0
