"""Draining the outbox: what waits is delivered oldest first, target by target, with backoff.

A target's messages go in order: when its oldest waiting message is not due yet (its backoff),
none of the target's are tried; when one fails, the ones behind it wait for the next pass, since
the same chain would fail them too. Each message is taken through `Router.retry`, which holds
its claim (a kernel lock), so two flushers at once never send one message twice; a flusher that
finds a target's message held by another leaves that target to it. `outbox retry` is such a pass
too (one target at a time), and `outbox retry ID` one message of it.

`watch` repeats that every interval and, between passes, probes the targets that have messages
waiting (status's probes, nothing sent): a target that comes back (reachable now, not at the
last look) is drained at once, whatever its backoff says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clawrelay.errors import ClawrelayError, Reason
from clawrelay.journal import now_ms
from clawrelay.outcome import Delivery, Status
from clawrelay.router import NotRetried

if TYPE_CHECKING:
    from clawrelay.journal import Journal, MessageRecord
    from clawrelay.router import Router

CONCURRENT_TARGETS = 4
# left waiting for a reason that is a watched outbox's normal state: not worth a report each pass
# (a backoff running, a target to be put back, a message another flusher delivered first)
_QUIET = (Reason.BACKOFF, Reason.UNKNOWN_TARGET, Reason.NO_LONGER_QUEUED)


@dataclass
class Pass:
    """What one flush did: deliveries (of every outcome), messages left alone and why, errors."""

    retried: list[Delivery] = field(default_factory=list)
    skipped: list[dict[str, object]] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "retried": [d.to_json() for d in self.retried],
            "skipped": self.skipped,
            "errors": self.errors,
            "expired": self.expired,
        }

    @property
    def exit_code(self) -> int:
        codes = {d.exit_code for d in self.retried} | ({1} if self.errors else set())
        return 1 if 1 in codes else (4 if 4 in codes else 0)

    def summary(self) -> dict[str, int]:
        """What `service status` shows of the last pass: how many of each outcome."""
        by = {s: sum(1 for d in self.retried if d.status is s) for s in (Status.DELIVERED, Status.AMBIGUOUS)}
        return {
            "delivered": by[Status.DELIVERED],
            "ambiguous": by[Status.AMBIGUOUS],
            "still_queued": len(self.retried) - by[Status.DELIVERED] - by[Status.AMBIGUOUS],
            "errors": len(self.errors),
            "expired": len(self.expired),
            "exit_code": self.exit_code,
        }


class Flusher:
    def __init__(
        self,
        router: Router,
        *,
        probe_timeout: float = 3.0,
        concurrent_targets: int = CONCURRENT_TARGETS,
        on_start: Callable[[MessageRecord], None] | None = None,
        on_done: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.router = router
        self.journal: Journal = router.journal
        self.probe_timeout = probe_timeout
        self.concurrent_targets = concurrent_targets
        self.on_start, self.on_done = on_start, on_done
        self._seen_up: dict[str, bool] = {}  # target → reachable at the last look

    def waiting(self) -> dict[str, list[MessageRecord]]:
        """Queued messages per target, oldest first (ambiguous ones are a person's decision)."""
        out: dict[str, list[MessageRecord]] = {}
        for r in self.journal.outbox():
            if r.status is Status.QUEUED:
                out.setdefault(r.target, []).append(r)
        return out

    async def once(self, *, now: bool = False) -> Pass:
        """One pass over every target with due messages (every target with `now`)."""
        result = Pass(expired=self.journal.expire())
        known = self.router.routes.config.targets
        due = {}
        for target, rs in self.waiting().items():
            if target not in known:  # removed from the routes: it waits for them, or for a purge
                result.skipped += [
                    {"id": r.id, "reason": Reason.UNKNOWN_TARGET, "target": target} for r in rs
                ]
            elif now or _is_due(rs[0]):
                due[target] = rs
            else:
                result.skipped += [
                    {"id": r.id, "reason": Reason.BACKOFF, "next_attempt_ms": r.next_attempt_ms} for r in rs
                ]
        await self._drain_all(due, result)
        return result

    async def watch(
        self, interval: float, report: Callable[[Pass], None], on_pass: Callable[[Pass], None] | None = None
    ) -> None:
        """Pass after pass until the router is told to stop; `report` gets each pass that did
        something, `on_pass` every pass (its finish is what tells that a flusher runs)."""
        while not self.router.stopping:
            result = await self.watch_once()
            if on_pass is not None:
                on_pass(result)
            if result.retried or result.errors or result.expired:
                report(result)
            await self.router.wait_for_stop(interval)

    async def watch_once(self) -> Pass:
        """One pass of `watch`: what is due, then the targets that came back since the last look
        (the relay runs these itself, between the commands it serves)."""
        result = await self.once()
        result.skipped = [s for s in result.skipped if s["reason"] not in _QUIET]
        tried = {d.target for d in result.retried}
        came_back = await self._find_returned(set(self.waiting()), tried)
        if came_back and not self.router.stopping:
            await self._drain_all({t: rs for t, rs in self.waiting().items() if t in came_back}, result)
        return result

    async def _find_returned(self, targets: set[str], tried: set[str]) -> set[str]:
        """Targets reachable now that were not at the last look (or were never looked at), other
        than those just tried."""
        from clawrelay.probes import Probes
        from clawrelay.status import steps_of

        routes = self.router.routes
        targets = {t for t in targets if t in routes.config.targets}
        if not targets:
            return set()
        probes = Probes(routes, self.router.carriers(), self.probe_timeout)
        names = sorted(targets)
        found = await asyncio.gather(*(steps_of(probes, routes, t) for t in names))
        back = set()
        for name, steps in zip(names, found, strict=True):
            up = any(p.ok for p in steps)
            if up and not self._seen_up.get(name) and name not in tried:
                back.add(name)
            self._seen_up[name] = up
        return back

    async def _drain_all(self, queues: dict[str, list[MessageRecord]], result: Pass) -> None:
        bound = asyncio.Semaphore(self.concurrent_targets)

        async def one(records: list[MessageRecord]) -> None:
            async with bound:
                await self._drain(records, result)

        await asyncio.gather(*(one(rs) for rs in queues.values()))

    async def _drain(self, records: list[MessageRecord], result: Pass) -> None:
        """One target's messages, oldest first, until one is not delivered."""
        for i, r in enumerate(records):
            if self.router.stopping:
                return
            if not await self.retry(r, result):
                result.skipped += [
                    {"id": later.id, "reason": Reason.BEHIND_UNDELIVERED, "behind": r.id}
                    for later in records[i + 1 :]
                ]
                return

    async def retry(self, record: MessageRecord, result: Pass, *, manual: bool = False) -> bool:
        """Send one message again, into `result`; whether its target's newer messages may follow
        it: yes when it was delivered or is out of their way (another flusher delivered it, or
        it may have arrived and resending it is a person's decision), no when it is not
        delivered, or in flight in another process (which has this target's queue right now)."""
        if self.on_start is not None:
            self.on_start(record)
        try:
            d = await self.router.retry(record, manual=manual)
        except NotRetried as e:
            result.skipped.append({"id": record.id, "reason": e.reason})
            return e.reason is not Reason.IN_FLIGHT
        except ClawrelayError as e:
            result.errors.append({"id": record.id, "reason": e.reason, "message": e.message})
            return False
        result.retried.append(d)
        if self.on_done is not None:
            self.on_done(d)
        return d.status is Status.DELIVERED


def _is_due(record: MessageRecord) -> bool:
    return (record.next_attempt_ms or 0) <= now_ms()
