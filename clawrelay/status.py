"""`clawrelay status`: which ways to each target work right now, and what the journal says.

Reachability is `clawrelay.probes`, as doctor's (a gateway connect, a node lookup, `test -w` over a
carrier, a bot's getMe), all at once and each cut at a short timeout, so a fleet with one dead machine
answers in about that timeout. Nothing is sent to any agent. The journal adds the last path that
delivered to each target and what waits for it in the outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from clawrelay.probes.check import Check, run_check

if TYPE_CHECKING:
    from clawrelay.config.routes import Routes
    from clawrelay.journal import Journal
    from clawrelay.probes import Probes


class LastDelivery(TypedDict):
    id: str
    kind: str
    via: str | None
    at_ms: int


@dataclass
class TargetStatus:
    target: str
    steps: list[Check]  # one per chain step: subject the target, transport the step's
    waiting: dict[str, int] = field(default_factory=lambda: {"queued": 0, "ambiguous": 0})
    last: LastDelivery | None = None  # the newest delivery

    @property
    def reachable(self) -> list[str]:
        return [str(c.transport) for c in self.steps if c.ok]

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "reachable": self.reachable,
            "steps": [_json(c, step=c.step, transport=c.transport) for c in self.steps],
            "last_delivered": self.last,
            "outbox": self.waiting,
        }


@dataclass
class HostStatus:
    host: str
    checks: list[Check]  # subject: what was checked (local, ssh, gateway, node)

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "up": any(c.ok for c in self.checks),
            "checks": [_json(c, check=c.subject) for c in self.checks],
        }


def _json(c: Check, **name: object) -> dict[str, object]:
    return {**name, "ok": c.ok, "detail": c.detail, "reason": c.reason, "fix": c.fix}


async def steps_of(probes: Probes, routes: Routes, target: str) -> list[Check]:
    """Every step of a target's chain, probed at the same time."""
    return list(
        await asyncio.gather(
            *(
                run_check(
                    target,
                    probes.step(target, s),
                    step=s.index,
                    transport=s.transport,
                    timeout=probes.timeout,
                )
                for s in routes.plan(target)
            )
        )
    )


async def host_checks(probes: Probes, routes: Routes, host: str) -> list[Check]:
    """A host's ways in: its node's gateway up and the node connected; ssh answering; local."""
    h = routes.config.hosts[host]
    jobs = {}
    if h.local:
        jobs["local"] = probes.reach(host, "local")
    if h.ssh is not None:
        jobs["ssh"] = probes.reach(host, "ssh")
    if h.node is not None:
        jobs["gateway"] = probes.gateway(h.node.gateway)
        jobs["node"] = probes.node(host)
    return list(
        await asyncio.gather(*(run_check(what, job, timeout=probes.timeout) for what, job in jobs.items()))
    )


async def survey(
    routes: Routes, journal: Journal, targets: list[str], timeout: float, *, all_hosts: bool = False
) -> tuple[list[TargetStatus], list[HostStatus]]:
    """The targets' steps and the hosts' checks, all at once; the hosts are those of the
    targets, or every configured host with `all_hosts`."""
    from clawrelay import paths
    from clawrelay.carriers.hosts import open_carriers
    from clawrelay.probes import Probes

    used = {h for t in targets if (h := routes.target(t).host)}
    hosts = sorted(routes.config.hosts if all_hosts else used)
    async with open_carriers(routes, paths.state_dir()) as carriers:
        probes = Probes(routes, carriers, timeout)
        found = await asyncio.gather(
            *(steps_of(probes, routes, t) for t in targets), *(host_checks(probes, routes, h) for h in hosts)
        )
    waiting, last = journal.waiting(), journal.last_delivered()
    statuses = []
    for name, steps in zip(targets, found[: len(targets)], strict=True):
        s = TargetStatus(name, steps)
        s.waiting.update(waiting.get(name, {}))
        if (r := last.get(name)) is not None:
            s.last = {"id": r.id, "kind": r.kind, "via": r.via, "at_ms": r.updated_ms}
        statuses.append(s)
    return statuses, [HostStatus(h, checks) for h, checks in zip(hosts, found[len(targets) :], strict=True)]
