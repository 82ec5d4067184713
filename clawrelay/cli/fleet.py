"""`clawrelay fleet status|elect`: the relays that share a Redis (`fleet:` in routes.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from clawrelay.cli.common import ConfigOpt, JsonOpt, emit_json, load, reported

if TYPE_CHECKING:
    from clawrelay.config.model import Fleet

app = typer.Typer(help="The relays that share a Redis: who is alive, who leads.", no_args_is_help=True)


def _fleet(config: str | None) -> Fleet:
    from clawrelay.errors import ConfigError, Reason

    routes = load(config)
    if routes.config.fleet is None:
        raise ConfigError(
            f"{routes.source}: no `fleet:` section; add one with the Redis URL (docs/fleet.md)",
            reason=Reason.NO_FLEET,
        )
    return routes.config.fleet


def on_fleet(fleet: Fleet, job: Any) -> Any:
    """Run `job(redis)` on a connected client; Redis failing midway is the same one line."""
    import asyncio

    from clawrelay.fleet.connect import connected, is_redis_error, translate
    from clawrelay.relay import context

    async def go() -> Any:
        async with connected(fleet) as redis:
            try:
                return await job(redis)
            except Exception as e:
                if is_redis_error(e):
                    raise translate(e, fleet) from None
                raise

    return context.run(go()) if context.current.get() is not None else asyncio.run(go())


@app.command()
def status(as_json: bool = JsonOpt, config: str | None = ConfigOpt) -> None:
    """Every relay of the fleet: alive or not, when last seen, its version, what waits in its
    outbox and which targets it reaches; and which one leads.

    Exit 0; 2 when routes.yaml has no `fleet:` or Redis refuses the password; 1 when Redis does
    not answer.
    """
    from clawrelay.fleet import presence

    with reported(as_json):
        fleet = _fleet(config)
        view = on_fleet(fleet, presence.view)
        if as_json:
            emit_json(view)
            return
        from clawrelay.cli.render import when

        leader = view["leader"]
        typer.echo(f"leader: {leader} (token {view['token']})" if leader else "leader: none")
        if not view["nodes"]:
            typer.echo("no relay has joined yet (`clawrelay serve` joins)")
        rows = [("NODE", "STATE", "LAST SEEN", "VERSION", "OUTBOX", "REACHES")]
        for n in view["nodes"]:
            reach = ", ".join(f"{t} ({'/'.join(ways)})" for t, ways in sorted(n["reach"].items())) or "-"
            rows.append(
                (
                    n["node"] + (" *" if n["node"] == leader else ""),
                    "alive" if n["alive"] else "offline",
                    when(n["last_seen_ms"]) if n["last_seen_ms"] else "-",
                    str(n["version"] or "-"),
                    str(n["outbox"] if n["outbox"] is not None else "-"),
                    reach,
                )
            )
        if view["nodes"]:
            widths = [max(len(r[i]) for r in rows) for i in range(5)]
            for r in rows:
                typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[5])
        for e in view["events"][-5:]:
            typer.echo(f"{when(e['at_ms'])}  {e['node']} {e['event']}" if e.get("at_ms") else str(e))


@app.command()
def elect(
    wait: str = typer.Option(
        "", "--wait", help="How long to wait for the new leader (default: ttl + heartbeat)."
    ),
    as_json: bool = JsonOpt,
    config: str | None = ConfigOpt,
) -> None:
    """Make the leader give up its lease; another relay takes it at its next heartbeat.

    Prints the new leader ({"previous", "leader", "token"} with --json). Exit 0 once a leader
    holds the lease, 1 when none did within the wait (no relay is alive), 2 or 1 for Redis as
    `fleet status`.
    """
    import asyncio

    from clawrelay.cli.common import duration_option
    from clawrelay.fleet import keys, leader

    with reported(as_json):
        fleet = _fleet(config)
        limit = duration_option(wait, "--wait") if wait else fleet.ttl + fleet.heartbeat

        async def job(redis: Any) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            previous = await leader.elect(redis, fleet.heartbeat)
            deadline = loop.time() + limit
            while True:
                value = await redis.get(keys.LEADER)
                if value or loop.time() >= deadline:
                    break
                await asyncio.sleep(0.1)
            node, _, token = (value or "").partition(" ")
            return {"previous": previous, "leader": node or None, "token": int(token) if token else None}

        out = on_fleet(fleet, job)
        if as_json:
            emit_json(out)
        elif out["leader"]:
            was = f" (was {out['previous']})" if out["previous"] else " (there was none)"
            typer.echo(f"leader: {out['leader']}, token {out['token']}{was}")
        else:
            typer.echo(f"no relay took the lease within {limit:g}s: is any relay of the fleet alive?")
        raise typer.Exit(0 if out["leader"] else 1)
