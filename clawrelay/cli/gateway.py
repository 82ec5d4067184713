"""`clawrelay call` and `clawrelay nodes`: the gateway directly, without Node.

`call` replaces `openclaw gateway call METHOD --params JSON --json` (same JSON out, exit 0/1),
at a fraction of its start-up time and memory. A GATEWAY given as a ws(s):// URL needs no
routes.yaml at all, so that path never loads the config model.
"""

from __future__ import annotations

import json
import os
from typing import Any

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, duration_option, emit_json, load, reported
from clawrelay.secrets import TOKEN_ENV


def _target(spec: str, config: str | None, token_env: str) -> tuple[str, str, str | None]:
    """GATEWAY (a routes name or a URL) → (name, url, token)."""
    if spec.startswith(("ws://", "wss://")):
        return spec, spec, os.environ.get(token_env) or None  # a bare URL: no routes, no reference
    from clawrelay.errors import UsageError

    gateways = load(config).config.gateways
    gw = gateways.get(spec)
    if gw is None:
        known = ", ".join(sorted(gateways)) or "none"
        raise UsageError(f"unknown gateway {spec!r} (known: {known}; or give a ws:// URL)")
    return spec, gw.url, gw.resolve_token(token_env)


def call(
    gateway: str = typer.Argument(..., help="A gateway name from routes.yaml, or a ws(s):// URL."),
    method: str = typer.Argument(..., help="The gateway method, e.g. health, status, node.list."),
    params: str = typer.Option("{}", "--params", "-p", help="The params object, as JSON."),
    timeout: str = typer.Option("30s", "--timeout", help="Connect and answer within this."),
    token_env: str = typer.Option(
        TOKEN_ENV, "--token-env", help="Environment variable holding the token for a URL gateway."
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Call one gateway method: {"ok":true,"payload":...} or {"ok":false,"error":{...}}; exit 0 / 1."""
    from clawrelay.errors import UsageError
    from clawrelay.relay import context

    with reported(as_json):
        try:
            body = json.loads(params)
        except ValueError as e:
            raise UsageError(f"--params is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise UsageError("--params must be a JSON object")
        seconds = duration_option(timeout, "--timeout")
        name, url, token = _target(gateway, config, token_env)
        result = context.run(_call(name, url, token, method, body, seconds))
        from clawrelay.secrets import scrub

        # A payload (config.get, say) can hold the very token used to connect: never print it.
        typer.echo(scrub(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2)))
        raise typer.Exit(0 if result["ok"] else 1)


async def _call(
    name: str, url: str, token: str | None, method: str, params: dict[str, Any], timeout: float
) -> dict[str, Any]:
    import time

    from clawrelay import paths
    from clawrelay.openclaw import ALL_SCOPES, GatewayError
    from clawrelay.openclaw.pool import gateway_session

    deadline = time.monotonic() + timeout
    try:
        async with gateway_session(
            url, name=name, token=token, home=paths.state_dir(), scopes=ALL_SCOPES, timeout=timeout
        ) as client:
            payload = await client.request(method, params, timeout=max(0.1, deadline - time.monotonic()))
    except GatewayError as e:
        return {"ok": False, "error": e.to_json()}
    return {"ok": True, "payload": payload}


def nodes(
    gateway: str | None = typer.Argument(None, help="One gateway (name or URL); default all configured."),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Every node on the configured gateways: connected, approved, system.run allowed, last seen."""
    from clawrelay.relay import context

    with reported(as_json):
        if gateway is not None:
            targets = [_target(gateway, config, TOKEN_ENV)]
        else:
            gateways = load(config).config.gateways
            targets = [(n, g.url, g.resolve_token()) for n, g in gateways.items()]
        rows, errors = context.run(_nodes(targets))
        if as_json:
            emit_json({"nodes": rows, "errors": errors})
        else:
            _print_nodes(rows, errors)
        raise typer.Exit(1 if errors else 0)


Rows = list[dict[str, Any]]


async def _nodes(targets: list[tuple[str, str, str | None]]) -> tuple[Rows, Rows]:
    import asyncio

    from clawrelay import paths
    from clawrelay.openclaw import READ, GatewayError
    from clawrelay.openclaw.pool import gateway_session

    home = paths.state_dir()

    async def one(name: str, url: str, token: str | None) -> list[dict[str, Any]]:
        async with gateway_session(
            url, name=name, token=token, home=home, scopes=(READ,), timeout=10
        ) as client:
            client.require(READ, method="node.list")
            payload = await client.request("node.list", {}, timeout=10)
        return [_node_row(name, n) for n in payload.get("nodes") or []]

    results = await asyncio.gather(*(one(*t) for t in targets), return_exceptions=True)
    rows: Rows = []
    errors: Rows = []
    for (name, _, _), result in zip(targets, results, strict=True):
        if isinstance(result, GatewayError):
            errors.append({"gateway": name, **result.to_json()})
        elif isinstance(result, BaseException):
            raise result
        else:
            rows.extend(result)
    return rows, errors


def _node_row(gateway: str, n: dict[str, Any]) -> dict[str, Any]:
    from clawrelay.openclaw.nodes import approval

    return {
        "gateway": gateway,
        "id": n.get("nodeId"),
        "name": n.get("displayName"),
        "connected": bool(n.get("connected")),
        "approval": approval(n),
        "system_run": "system.run" in (n.get("commands") or []),
        "last_seen_ms": n.get("lastSeenAtMs"),
        "platform": n.get("platform"),
        "version": n.get("version"),
    }


def _print_nodes(rows: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
    from clawrelay.cli.render import when
    from clawrelay.secrets import scrub

    if not rows and not errors:
        typer.echo("no nodes")
    for r in rows:
        seen = when(r["last_seen_ms"]) if r["last_seen_ms"] else "never"
        state = "connected" if r["connected"] else "offline"
        run = "allowed" if r["system_run"] else "not allowed"
        typer.echo(
            f"{r['gateway']:<12} {r['name'] or '-':<16} {state:<9} {r['approval']:<17} "
            f"system.run {run:<11} seen {seen}  {r['id']}"
        )
    for e in errors:
        typer.echo(scrub(e["message"]), err=True)
