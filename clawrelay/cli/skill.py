"""`clawrelay skill install|show`: the OpenClaw skill that lets an agent call clawrelay."""

from __future__ import annotations

from pathlib import Path

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, load, reported

app = typer.Typer(help="The OpenClaw skill: install it into a workspace, or print it.", no_args_is_help=True)
WorkspaceOpt = typer.Option(
    None,
    "--workspace",
    "-w",
    show_default=False,
    help="The OpenClaw workspace (default: OpenClaw's own, ~/.openclaw/workspace).",
)


@app.command()
def install(
    workspace: Path | None = WorkspaceOpt,
    force: bool = typer.Option(False, "--force", help="Replace a SKILL.md that was edited by hand."),
    check: bool = typer.Option(
        True,
        "--check/--no-check",
        help="Ask `openclaw skills list` (where openclaw is on PATH) whether the agent will see the skill.",
    ),
    config: str | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write <workspace>/skills/clawrelay/SKILL.md, listing the targets of routes.yaml. Idempotent.

    The skill runs this clawrelay (by absolute path) with these routes (an absolute path) and
    this state dir, whatever the gateway's PATH, working folder and environment are."""
    from clawrelay import skill

    with reported(as_json):
        routes = load(config)
        where = (workspace or skill.default_workspace()).expanduser()
        this = skill.Install.this(routes)
        skill.check_visible(this)
        path, what = skill.install(skill.render(routes, this), where, force)
        warning = skill.eligibility(where) if check else None
        if as_json:
            emit_json(
                {
                    "path": str(path),
                    "result": what,
                    "routes": routes.source,
                    "program": list(this.argv),
                    "config": this.config,
                    "home": this.home,
                    "warning": warning,
                }
            )
        else:
            typer.echo(f"{what}: {path} (targets from {routes.source}; runs {' '.join(this.argv)})")
        if warning:
            typer.echo(f"clawrelay: warning: {warning}", err=True)


@app.command()
def show(config: str | None = ConfigOpt) -> None:
    """Print the SKILL.md that `install` would write."""
    from clawrelay import skill

    with reported(False):
        typer.echo(skill.render(load(config)), nl=False)
