"""`clawrelay doctor`: every target, every step of its chain, probed for what it needs.

A setup detail nobody checked (a token, a pairing, a host key, a missing workspace, a chat that
is a bot) is how messages get lost. Doctor checks each one for real — it connects, looks up,
runs `--version` and `test -w` — and sends nothing to any agent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from clawrelay.carriers.proxy import PROXY_VARS
from clawrelay.probes.check import Check, run_check

if TYPE_CHECKING:
    from clawrelay.config.model import Fleet
    from clawrelay.config.routes import Routes


def proxies() -> Check:
    present = [v for v in PROXY_VARS if os.environ.get(v)]
    if not present:
        return Check("proxies", True, "no proxy variables in this environment")
    return Check(
        "proxies",
        True,
        f"{', '.join(present)} set here: clawrelay ignores them for gateways and "
        "Telegram, and removes them from the commands it runs on hosts",
    )


def secret_sources(routes: Routes) -> list[Check]:
    """Where each secret comes from, never its value: one `secrets` line for the secrets file and
    one per variable a secret is read from. Without a `secrets:` key every value comes from the
    environment, so only a variable set nowhere gets a line (with the fix that puts it in a file)."""
    from clawrelay.reasons import Reason
    from clawrelay.secrets import TOKEN_ENV, lookup

    checks = []
    secrets_file = routes.secrets_file
    if secrets_file is not None:
        path = secrets_file.path
        if secrets_file.missing:
            checks.append(
                Check(
                    "secrets",
                    False,
                    f"{path}: no such file",
                    reason=Reason.CONFIG,
                    fix=f"write NAME=value lines to it, then chmod 600 {path}",
                )
            )
        else:
            n = len(secrets_file)
            checks.append(
                Check(
                    "secrets",
                    True,
                    f"{path}: {n} value{'' if n == 1 else 's'}, mode {secrets_file.mode:04o}, owned by you",
                )
            )
    for var, keys in routes.secret_refs().items():
        used = ", ".join(keys)
        found = lookup(var)
        if found is not None:
            if secrets_file is not None:
                checks.append(Check("secrets", True, f"${{{var}}}: from {found.origin} ({used})"))
        elif var == TOKEN_ENV and all(k.endswith("(no token key)") for k in keys):
            if secrets_file is not None:  # optional: a gateway may need no token
                checks.append(Check("secrets", True, f"${{{var}}}: not set; {used} connects without a token"))
        else:
            if secrets_file is None:
                fix = (
                    f"export {var}=… where clawrelay runs (an agent's exec tool has the gateway "
                    f"service's environment, not your shell's), or put {var}=… in a file, chmod 600, "
                    "named in routes.yaml by `secrets: ./secrets.env`"
                )
            else:
                empty = secrets_file.line_of(var)
                fix = (
                    f"give {var} a value on line {empty} of {secrets_file.path}"
                    if empty
                    else f"add {var}=… to {secrets_file.path}"
                )
            checks.append(
                Check("secrets", False, f"${{{var}}}: NOT SET ({used})", reason=Reason.CONFIG, fix=fix)
            )
    return checks


async def diagnose(routes: Routes, targets: list[str], timeout: float) -> list[Check]:
    from clawrelay import paths
    from clawrelay.carriers.hosts import open_carriers
    from clawrelay.probes import Probes

    checks = []
    if routes.config.fleet is not None:
        checks.append(await run_check("fleet", fleet_probe(routes.config.fleet), timeout=timeout))
    async with open_carriers(routes, paths.state_dir()) as carriers:
        probes = Probes(routes, carriers, timeout)
        for name in targets:
            for step in routes.plan(name):
                checks.append(
                    await run_check(name, probes.step(name, step), step=step.index, transport=step.transport)
                )
    return checks


async def fleet_probe(fleet: Fleet) -> str:
    """The fleet's Redis answers with the password, and who is in it."""
    from clawrelay.fleet import presence
    from clawrelay.fleet.connect import connected, is_redis_error, translate, where

    async with connected(fleet) as redis:
        try:
            view = await presence.view(redis, events=0)
        except Exception as e:
            if is_redis_error(e):
                raise translate(e, fleet) from None
            raise
    alive = [n["node"] for n in view["nodes"] if n["alive"]]
    leader = view["leader"] or "none"
    return (
        f"Redis at {where(fleet.redis)} answers; {len(alive)} of {len(view['nodes'])} relays alive"
        f" ({', '.join(alive) or 'none'}), leader {leader}"
    )
