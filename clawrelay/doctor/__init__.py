"""`clawrelay doctor`: every target, every step of its chain, probed for what it needs.

A setup detail nobody checked (a token, a pairing, a host key, a missing workspace, a chat that
is a bot) is how messages get lost. Doctor checks each one for real — it connects, looks up,
runs `--version` and `test -w` — and sends nothing to any agent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from clawrelay.carriers.proxy import PROXY_VARS
from clawrelay.doctor.report import Check, checked

if TYPE_CHECKING:
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


async def diagnose(routes: Routes, targets: list[str], timeout: float) -> list[Check]:
    from clawrelay import paths
    from clawrelay.carriers.hosts import opened
    from clawrelay.doctor.probes import Probes

    checks = []
    async with opened(routes, paths.state_dir()) as carriers:
        probes = Probes(routes, carriers, timeout)
        for name in targets:
            for step in routes.plan(name):
                checks.append(await checked(name, probes.step(name, step), step=step.index,
                                            transport=step.transport))
    return checks
