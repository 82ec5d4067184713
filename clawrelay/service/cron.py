"""The flusher as an OpenClaw cron job: one pass every few minutes, run by the gateway on this
machine, for machines with neither systemd nor launchd. Everything goes through the gateway's own
`cron.*` methods with an admin connection, and `install` runs the job once and waits for it: a
job the gateway cannot run (wrong PATH, no exec rights) should fail at install, not silently later.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from clawrelay import paths
from clawrelay.errors import ClawrelayError, Reason, UsageError
from clawrelay.service import state, units
from clawrelay.service.first_run import first_run
from clawrelay.service.host import Say

if TYPE_CHECKING:
    from clawrelay.config.routes import Routes
    from clawrelay.openclaw.client import GatewayClient
    from clawrelay.service.plan import Plan

RPC_TIMEOUT = 15.0


def require() -> None:
    """Any machine can ask a gateway; whether one runs here is `fill`'s question."""


def fill(p: Plan, *, gateway: str | None, before: dict[str, Any] | None) -> None:
    from clawrelay.config import load_routes

    routes = load_routes(p.config)
    p.gateway, p.url = choose_gateway(routes, gateway)
    if before is not None and before.get("gateway") not in (None, p.gateway):
        raise UsageError(
            f"the cron flusher is installed on {before['gateway']}: `clawrelay service "
            "uninstall` first, so its job there does not stay behind"
        )
    p.rpc.append(("cron.add", units.cron_job(p.argv, p.env, p.interval_s, paths.state_dir())))
    p.notes += _gateway_notes(p.url)


def choose_gateway(routes: Routes, named: str | None) -> tuple[str, str]:
    """The gateway to schedule on: --gateway (a routes name or a ws:// URL), else the one gateway
    of routes.yaml on loopback: the job runs in that gateway's process, so on its machine."""
    from clawrelay.openclaw.client import is_loopback

    gateways = routes.config.gateways
    if named is not None:
        if named.startswith(("ws://", "wss://")):
            return named, named
        if named not in gateways:
            known = ", ".join(sorted(gateways)) or "none"
            raise UsageError(
                f"--gateway: no gateway {named!r} in {routes.source} (known: {known}; or a ws:// URL)"
            )
        return named, gateways[named].url
    local = sorted(n for n, g in gateways.items() if is_loopback(g.url))
    if len(local) == 1:
        return local[0], gateways[local[0]].url
    if not local:
        raise UsageError(
            f"no gateway of {routes.source} runs on this machine (a loopback url): name the one "
            "that does with --gateway NAME or a ws:// URL, or use --kind systemd|launchd"
        )
    raise UsageError(
        f"several gateways run on this machine ({', '.join(local)}): choose one with --gateway NAME"
    )


def _gateway_notes(url: str) -> list[str]:
    from clawrelay.openclaw.client import is_loopback

    if is_loopback(url):
        return []
    return [
        f"{url} is not on loopback: the job runs the flusher on that gateway's machine, with this "
        "machine's paths; that only works when it is this machine"
    ]


def install(p: Plan, record: dict[str, Any], say: Say) -> None:
    import asyncio

    assert p.gateway is not None
    gateway = p.gateway
    url, token = _gateway_of(gateway, p.config)
    ((_, params),) = p.rpc
    record.update(gateway=gateway, url=url, declaration_key=params["declarationKey"])

    async def go() -> dict[str, Any]:
        client = await _open(gateway, url, token, RPC_TIMEOUT)
        try:
            scheduler = await client.request("cron.status", {}, timeout=RPC_TIMEOUT)
            if scheduler.get("enabled") is False:
                p.notes.append(
                    f"{gateway}'s scheduler is off (its config has cron.enabled: false): "
                    "the job will not run until it is on"
                )
            added = await client.request("cron.add", params, timeout=RPC_TIMEOUT)
            inner = added.get("job")
            job: dict[str, Any] = inner if isinstance(inner, dict) else added
            record["job_id"] = str(job["id"])
            state.save_installed(record)  # on record before anything else can fail: uninstall can undo it
            what = "updated" if added.get("updated") else "unchanged"
            what = "added" if added.get("created", True) else what
            say(
                f"{gateway}: cron job {units.JOB_NAME} {what} (id {record['job_id']}), every "
                f"{state.every(p.interval_s)}"
            )
            return await first_run(client, record["job_id"], timeout=RPC_TIMEOUT)
        finally:
            await client.close()

    first = asyncio.run(go())
    say(f"{gateway}: first run: {first['said']}")
    record["first_run"] = first
    if not first["ok"]:
        state.save_installed(record)
        raise ClawrelayError(
            f"the cron job on {gateway} is installed, but its first run failed: {first['said']}",
            reason=Reason.ERROR,
        )


def active(record: dict[str, Any], config: str | None, timeout: float) -> tuple[bool | None, str]:
    from clawrelay.openclaw import GatewayError

    name = str(record.get("gateway"))
    try:
        job = _ask_about_job(record, config, "cron.get", timeout)
    except GatewayError as e:
        return None, f"{name}: {e.message}"
    if job is None:
        return False, (
            f"{name}: the cron job {record.get('job_id')} is gone (`clawrelay service install` puts it back)"
        )
    st = job.get("state") or {}
    if not job.get("enabled", True):
        return False, f"{name}: the cron job is disabled ({st.get('lastError') or 'by hand'})"
    nxt = st.get("nextRunAtMs")
    last = st.get("lastRunAtMs")
    said = f"{name}: scheduled every {state.every(record.get('interval_s') or 0)}"
    if isinstance(nxt, int):
        said += f", next run in {max(0, nxt - time.time_ns() // 1_000_000) // 1000}s"
    if isinstance(last, int):
        said += f"; last run {state.ago(last)}: {st.get('lastRunStatus') or st.get('lastStatus')}"
    return True, said


def removal(record: dict[str, Any]) -> str:
    return f"remove cron job {record.get('job_id')} from {record.get('gateway')}"


def remove(record: dict[str, Any], config: str | None, say: Say) -> None:
    removed = _ask_about_job(record, config, "cron.remove", RPC_TIMEOUT) is not None
    what = "removed" if removed else "was gone already"
    say(f"{record.get('gateway')}: cron job {record.get('job_id')} {what}")


# -- the gateway ---------------------------------------------------------------------------------


def _ask_about_job(
    record: dict[str, Any], config: str | None, method: str, timeout: float
) -> dict[str, Any] | None:
    """`method` about the recorded job, on the gateway it was installed on; None when that gateway
    no longer has the job."""
    import asyncio

    from clawrelay.openclaw import GatewayError

    name = str(record.get("gateway"))
    url, token = _gateway_of(name, config)

    async def go() -> dict[str, Any] | None:
        client = await _open(name, url, token, timeout)
        try:
            return await client.request(method, {"id": record.get("job_id")}, timeout=timeout)
        except GatewayError as e:
            if e.reason == Reason.NOT_FOUND:
                return None
            raise
        finally:
            await client.close()

    return asyncio.run(go())


def _gateway_of(name: str, config: str | None) -> tuple[str, str | None]:
    """(url, token) of a gateway named in routes.yaml, or given as a URL (token: the env's)."""
    from clawrelay.secrets import TOKEN_ENV, value_of

    if name.startswith(("ws://", "wss://")):
        return name, value_of(TOKEN_ENV) or None
    from clawrelay.config import load_routes

    gateways = load_routes(config).config.gateways
    if name not in gateways:
        raise UsageError(
            f"gateway {name!r} is no longer in routes.yaml: put it back, or remove the job with "
            f"`openclaw cron rm` on that gateway"
        )
    gw = gateways[name]
    return gw.url, gw.resolve_token(TOKEN_ENV)


async def _open(name: str, url: str, token: str | None, timeout: float) -> GatewayClient:
    from clawrelay.openclaw import ALL_SCOPES, open_gateway
    from clawrelay.openclaw.client import ADMIN

    client = await open_gateway(
        url, name=name, token=token, home=paths.state_dir(), scopes=ALL_SCOPES, timeout=timeout
    )
    try:
        client.require(ADMIN, method="cron.add")
    except BaseException:
        await client.close()
        raise
    return client
