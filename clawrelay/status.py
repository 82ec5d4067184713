"""`clawrelay status`: which ways to each target work right now, and what the journal says.

Reachability is doctor's probes (a gateway connect, a node lookup, `test -w` over a carrier, a
bot's getMe), all at once and each cut at a short timeout, so a fleet with one dead machine
answers in about that timeout. Nothing is sent to any agent. The journal adds the last path that
delivered to each target and what waits for it in the outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clawrelay.doctor.report import Broken
from clawrelay.errors import ClawrelayError

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from clawrelay.config.routes import Routes
    from clawrelay.doctor.probes import Probes
    from clawrelay.journal import Journal


@dataclass(frozen=True)
class Probe:
    """One thing checked: a chain step, a host's gateway, node or ssh."""

    what: str  # a transport, or gateway / node / ssh / local for a host
    ok: bool
    detail: str
    reason: str | None = None
    step: int | None = None

    def to_json(self, key: str = "check") -> dict[str, object]:
        """A step is named by its transport (and position); a host's check by what it checked."""
        out = {key: self.what, "ok": self.ok, "detail": self.detail, "reason": self.reason}
        return {"step": self.step, **out} if key == "transport" else out


@dataclass
class TargetStatus:
    target: str
    steps: list[Probe]
    waiting: dict[str, int] = field(default_factory=lambda: {"queued": 0, "ambiguous": 0})
    last: dict[str, object] | None = None  # the newest delivery: id, kind, via, at_ms

    @property
    def reachable(self) -> list[str]:
        return [p.what for p in self.steps if p.ok]

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "reachable": self.reachable,
            "steps": [p.to_json("transport") for p in self.steps],
            "last_delivered": self.last,
            "outbox": self.waiting,
        }


@dataclass
class HostStatus:
    host: str
    checks: list[Probe]

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "up": any(c.ok for c in self.checks),
            "checks": [c.to_json() for c in self.checks],
        }


async def checked(what: str, probe: Awaitable[str], timeout: float, step: int | None = None) -> Probe:
    """A probe's answer, or why not, within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            return Probe(what, True, await probe, step=step)
    except TimeoutError:
        return Probe(what, False, f"no answer within {timeout:g}s", "timeout", step)
    except Broken as e:
        return Probe(what, False, e.detail, e.reason, step)
    except ClawrelayError as e:
        return Probe(what, False, e.message, e.reason, step)


async def steps_of(probes: Probes, routes: Routes, target: str) -> list[Probe]:
    """Every step of a target's chain, probed at the same time."""
    plan = routes.plan(target)
    return list(
        await asyncio.gather(
            *(checked(s.transport, probes.step(target, s), probes.timeout, s.index) for s in plan)
        )
    )


async def host_checks(probes: Probes, routes: Routes, host: str) -> list[Probe]:
    """A host's ways in: its node's gateway up and the node connected; ssh answering; local."""
    h = routes.config.hosts[host]
    t = probes.timeout
    jobs = []
    if h.local:
        jobs.append(checked("local", probes.reach(host, "local"), t))
    if h.ssh is not None:
        jobs.append(checked("ssh", probes.reach(host, "ssh"), t))
    if h.node is not None:
        jobs.append(checked("gateway", probes.gateway(h.node.gateway), t))
        jobs.append(checked("node", probes.node(host), t))
    return list(await asyncio.gather(*jobs))


async def survey(
    routes: Routes, journal: Journal, targets: list[str], timeout: float, *, all_hosts: bool = False
) -> tuple[list[TargetStatus], list[HostStatus]]:
    """The targets' steps and the hosts' checks, all at once; the hosts are those of the
    targets, or every configured host with `all_hosts`."""
    from clawrelay import paths
    from clawrelay.carriers.hosts import opened
    from clawrelay.doctor.probes import Probes

    used = {h for t in targets if (h := routes.target(t).host)}
    hosts = sorted(routes.config.hosts if all_hosts else used)
    async with opened(routes, paths.state_dir()) as carriers:
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
