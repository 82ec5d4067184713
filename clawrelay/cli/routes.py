"""`clawrelay routes check|show`: is the routes file right, and what does it resolve to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, reported

if TYPE_CHECKING:
    from clawrelay.config.routes import Routes

app = typer.Typer(help="Check and show the routes (routes.yaml).", no_args_is_help=True)


def _warnings(routes: Routes) -> list[str]:
    tokens = {f"gateways.{name}.token": gw.token for name, gw in routes.config.gateways.items()}
    if routes.config.telegram is not None:
        tokens["telegram.token"] = routes.config.telegram.token
    out = []
    if routes.config.telegram is not None and routes.config.telegram.literal_proxy_password:
        out.append("telegram.proxy holds a literal password; use http://user:${VAR}@host:port")
    secrets_file = routes.secrets_file
    if secrets_file is not None and secrets_file.missing:
        out.append(f"secrets: {secrets_file.path} does not exist")
    fleet = routes.config.fleet
    if fleet is not None:
        from clawrelay.secrets import REF, lookup, userinfo_password

        password = userinfo_password(fleet.redis)
        if password and not REF.fullmatch(password):
            out.append("fleet.redis holds a literal password; use redis://:${VAR}@host:6379/0")
        for name in REF.findall(fleet.redis):
            if lookup(name) is None:
                out.append(f"fleet.redis: environment variable {name} is not set here")
    for where, token in tokens.items():
        if token is None:
            continue
        if token.is_literal:
            out.append(f"{where} is a literal in the file; use a ${{VAR}} reference")
        elif not token.available():
            nor = ""
            if secrets_file is not None and not secrets_file.missing:
                nor = f", nor in {secrets_file.path}"
            out.append(f"{where}: environment variable {token.ref} is not set here{nor}")
    return out


@app.command()
def check(config: str | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Validate the routes: every error with its file, line and key. Exit 0 valid, 2 not."""
    from clawrelay.config import check_routes

    with reported(as_json):
        source, routes, errors = check_routes(config)
        warnings = _warnings(routes) if routes else []
        if as_json:
            emit_json({"ok": not errors, "source": source, "errors": errors, "warnings": warnings})
        else:
            for e in errors:
                typer.echo(e, err=True)
            for w in warnings:
                typer.echo(f"warning: {w}", err=True)
            if routes:
                c = routes.config
                typer.echo(
                    f"ok: {routes.source}: {len(c.targets)} targets, {len(c.groups)} groups, "
                    f"{len(c.hosts)} hosts, {len(c.gateways)} gateways"
                )
        if errors:
            raise typer.Exit(2)


@app.command()
def show(config: str | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Print the resolved routes, secrets masked (a reference, whether it is set, and from where)."""
    from clawrelay.cli.common import load

    with reported(as_json):
        routes = load(config)
        data = routes.resolved()
        if as_json:
            emit_json({"source": routes.source, "routes": data})
            return
        import yaml

        typer.echo(f"# source: {routes.source}")
        if routes.secrets_file is not None:
            typer.echo(
                f"# secrets: {routes.secrets_file.path}"
                + (" (does not exist)" if routes.secrets_file.missing else "")
            )
        from clawrelay.secrets import scrub

        typer.echo(scrub(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110).rstrip()))
