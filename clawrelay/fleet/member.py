"""What `clawrelay serve` does in a fleet: heartbeat, lead when it holds the lease, offer what it
could not deliver, deliver what others could not, and settle what the fleet did with its own.

Redis going away never stops the relay: its commands and its own outbox go on as without a
fleet, and it rejoins when Redis answers again (its heartbeat, its lease attempt, the entries it
was delivering). A result it could not publish then is published on rejoining, before it reads
anything new, so no other relay takes that message for an interrupted one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from clawrelay import __version__, recovery
from clawrelay.config.model import Fleet
from clawrelay.errors import ClawrelayError, Reason, StateError
from clawrelay.fleet import keys, leader, presence
from clawrelay.fleet import shared_outbox as shared
from clawrelay.fleet.connect import Redis, is_redis_error, translate
from clawrelay.journal import QUEUEABLE, Journal, now_ms
from clawrelay.outcome import Status

if TYPE_CHECKING:
    from clawrelay.config.routes import Routes
    from clawrelay.router import Router

log = logging.getLogger("clawrelay.fleet")

PENDING_BATCH = 16
CONCURRENT_TARGETS = 4  # targets delivered to at once, as the local flusher's
EXPIRE_EVERY = 12  # heartbeats between two expiry passes of the leader


class Member:
    def __init__(
        self,
        fleet: Fleet,
        node: str,
        *,
        journal: Journal,
        journals: Callable[[], Journal],
        routes: Callable[[], Routes],
        router: Callable[[Routes, Journal], Router],
        stopping: asyncio.Event,
        probe_timeout: float = 3.0,
    ) -> None:
        self.fleet, self.node = fleet, node
        self.instance = secrets.token_hex(6)
        self.holder = f"{node} {self.instance}"
        # one journal (one SQLite connection) per task: the heartbeat's (offer, settle, events)
        # and one per target's reader (`journals` opens it), whose calls may run in worker
        # threads at the same time
        self.journal, self._journals = journal, journals
        self._routes, self._router = routes, router
        self.stopping = stopping
        self.probe_timeout = probe_timeout
        self.redis: Redis | None = None
        self.connected = False
        self.error: str | None = None
        self.leader = False
        self.token = 0
        self.reach: dict[str, list[str]] = {}
        self.delivered = 0  # messages of other relays delivered here
        self._beats = 0
        self._groups: set[str] = set()
        self._unpublished: dict[str, dict[str, Any]] = {}  # results to publish once Redis answers
        self._unreleased: dict[str, str | None] = {}  # attempt records (as stored) to remove then
        self._joins = 0  # Redis lost and found again: each reader reads its own pending entries
        # the leader's events for `notify`, told by their own task: a wake waits for the agent's
        # turn (up to events.TURN_WAIT_S), longer than a lease lasts; None ends the task
        self._notices: asyncio.Queue[tuple[Routes, str] | None] = asyncio.Queue()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        from clawrelay.fleet.connect import client

        self.redis = client(self.fleet)
        consumer = asyncio.create_task(self._consume())
        notifier = asyncio.create_task(self._notify())
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    await self._round()
                except Exception:  # a full or busy journal costs this round, not the fleet
                    log.exception("fleet: heartbeat")
                left = self.fleet.heartbeat - (time.monotonic() - started)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.05, left)):
                        await self.stopping.wait()
        finally:
            await asyncio.gather(consumer, return_exceptions=True)  # it ends its delivery in flight
            self._notices.put_nowait(None)  # it ends the event it is telling, and drops the rest
            await asyncio.gather(notifier, return_exceptions=True)
            await self._leave()
            await self.redis.aclose()

    def describe(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "connected": self.connected,
            "leader": self.leader,
            "token": self.token or None,
            "error": self.error,
            "delivered_for_others": self.delivered,
        }

    def _lost(self, e: BaseException) -> None:
        """Redis failed: note it once, go on without the fleet until it answers again."""
        message = translate(e, self.fleet).message
        if self.connected or self.error != message:
            log.warning("%s; delivering locally until it answers", message)
        self.connected, self.error, self.leader = False, message, False
        self._groups.clear()
        self._joins += 1

    async def _round(self) -> None:
        """One heartbeat: probes, presence, lease, the leader's jobs, offer and settle."""
        assert self.redis is not None
        try:
            routes = await asyncio.to_thread(self._routes)
        except ClawrelayError as e:
            log.warning("fleet: routes: %s", e)
            return
        try:
            await self._publish_pending()
            waiting = await asyncio.to_thread(self.journal.waiting)
            other = await presence.beat(
                self.redis,
                presence.Heartbeat(
                    node=self.node,
                    version=__version__,
                    pid=os.getpid(),
                    instance=self.instance,
                    outbox=sum(w.get("queued", 0) + w.get("offered", 0) for w in waiting.values()),
                    reach=self.reach,
                    sent_ms=now_ms(),
                ),
                self.fleet.ttl,
            )
            if not self.connected:
                log.info("fleet: joined as %s", self.node)
            self.connected, self.error = True, None
            if other:
                log.warning("fleet: another relay (instance %s) also calls itself %s", other, self.node)
            await self._lead(routes)
            await self._offer(routes)
            await self._settle()
        except Exception as e:
            if not is_redis_error(e):
                raise
            self._lost(e)
        # after the heartbeat and the lease: a probe that hangs (an ssh host dropping packets)
        # delays what this relay reaches, never its presence; the next heartbeat carries it
        self.reach = await self._probe(routes)

    async def _probe(self, routes: Routes) -> dict[str, list[str]]:
        """Per target, the transports whose probe answered: what this relay can reach now."""
        from clawrelay.probes import Probes
        from clawrelay.relay import context
        from clawrelay.status import steps_of

        resident = context.resident()
        carriers = resident.carriers_for(routes) if resident is not None else None
        if carriers is None:
            return {}
        probes = Probes(routes, carriers, self.probe_timeout)
        names = sorted(routes.config.targets)
        found = await asyncio.gather(*(steps_of(probes, routes, t) for t in names), return_exceptions=True)
        reach = {}
        for name, checks in zip(names, found, strict=True):
            if isinstance(checks, BaseException):
                continue
            up = [c.transport for c in checks if c.ok and c.transport]
            if up:
                reach[name] = up
        return reach

    # -- leading --------------------------------------------------------------------------------

    async def _lead(self, routes: Routes) -> None:
        assert self.redis is not None
        lease = await leader.hold(self.redis, self.node, self.fleet.ttl, now_ms())
        was, had = self.leader, self.token
        self.leader, self.token = lease.held, (lease.token if lease.held else self.token)
        if lease.held and (not was or lease.token != had):
            # new to this process (a new token, or the script said "renewed": the reply that
            # said "newly" was lost, or this relay restarted within its own lease). Journaled
            # (and told) once per token all the same.
            await self._event(routes, "elected", self.node, lease.token)
        elif was and not lease.held:
            log.info("fleet: %s no longer leads (token %s)", self.node, self.token)
        if not lease.held:
            return
        changes = await leader.membership(self.redis, self.node, lease.token, now_ms())
        if changes is None:
            self.leader = False
            return
        joined, left = changes
        for n in joined:
            await self._event(routes, "joined", n, lease.token)
        for n in left:
            await self._event(routes, "left", n, lease.token)
        self._beats += 1
        if self._beats % EXPIRE_EVERY == 1:
            expired = await shared.expire(self.redis, f"{self.node} {lease.token}", self.node)
            if expired:
                log.info("fleet: %d message(s) expired in the shared outbox", expired)

    async def _event(self, routes: Routes, event: str, node: str, token: int) -> None:
        """Journaled here (the leader's journal), and sent to `notify` as a system event by the
        notifier task: the heartbeat never waits for it (its lease would expire meanwhile)."""
        text = {
            "elected": f"clawrelay fleet: {node} is the leader now (token {token})",
            "joined": f"clawrelay fleet: {node} joined",
            "left": f"clawrelay fleet: {node} left (not seen for {self.fleet.ttl:g}s, or stopped)",
        }[event]
        once = event == "elected"  # a token is elected once; joined and left may recur
        if not await asyncio.to_thread(self.journal.add_fleet_event, event, node, token, once=once):
            return
        log.info("%s", text)
        if self.fleet.notify is not None:
            self._notices.put_nowait((routes, text))

    async def _notify(self) -> None:
        """Tell `notify` the leader's events, in order, one at a time."""
        journal: Journal | None = None  # its own connection: it runs beside the heartbeat
        try:
            while (notice := await self._notices.get()) is not None:
                if journal is None:
                    journal = await asyncio.to_thread(self._journals)
                await self._tell(notice, journal)
        finally:
            if journal is not None:
                journal.close()

    async def _tell(self, notice: tuple[Routes, str], journal: Journal) -> None:
        from clawrelay import events

        routes, text = notice
        target = self.fleet.notify
        assert target is not None
        if self.stopping.is_set():
            log.warning("fleet: stopping; %s was not told that %s", target, text)
            return
        try:
            name = routes.resolve(target)
            router = self._router(routes, journal)
            stopper = asyncio.create_task(self._stop_when_stopping(router))  # SIGTERM: no next rung
            try:
                envs = router.envelopes([name], text, 0, kind="event")
                await router.deliver(envs, {name: events.plan(routes, name, "now")})
            finally:
                stopper.cancel()
                await router.aclose()
        except ClawrelayError as e:
            log.warning("fleet: could not tell %s that %s: %s", target, text, e)
        except Exception:
            log.exception("fleet: telling %s that %s", target, text)

    # -- the sender's side ------------------------------------------------------------------------

    async def _offer(self, routes: Routes) -> None:
        """This machine's messages that its relay tried and could not deliver go to the fleet."""
        assert self.redis is not None
        for record in await asyncio.to_thread(self.journal.outbox):
            if record.status is not Status.QUEUED or record.runs < 1:
                continue
            claim = self.journal.claim(record.id)
            if claim is None:
                continue  # being sent right now
            try:
                # holding its claim: an attempt it left open was a dead sender's (a `--no-relay`
                # send killed mid-attempt), told for what it is before anything else
                self.journal.close_interrupted(record.id, recovery.resend_safe)
                fresh = self.journal.by_id(record.id)
                if fresh is None or fresh.status is not Status.QUEUED:
                    continue
                if any(a.run == fresh.runs and a.reason == Reason.INTERRUPTED for a in fresh.attempts):
                    continue  # resending it is harmless by this machine's transports: its flusher's
                # offered here first: from now on this machine's flusher leaves it alone. A relay
                # that dies before the offer reaches Redis (or whose reply is lost) leaves it
                # offered here and not there, which `_settle` finds and offers again
                self.journal.set_status(record.id, Status.OFFERED)
                await shared.offer(self.redis, fresh, self.node)
                log.info("fleet: offered %s (→ %s)", record.id, record.target)
            finally:
                claim.release()

    async def _settle(self) -> None:
        """What the fleet did with this machine's offered messages, into its journal. Also a
        late result for a message the fleet called ambiguous: the relay that was thought dead
        was only cut off, and says now that it delivered it."""
        assert self.redis is not None
        watched = {
            r.id: r
            for r in await asyncio.to_thread(self.journal.outbox)
            if r.status is Status.OFFERED
            or (r.status is Status.AMBIGUOUS and now_ms() - r.updated_ms < shared.RESULT_KEPT_MS)
        }
        found = await shared.results(self.redis, list(watched))
        claims, runs, done = [], [], []
        try:
            for message_id, (result, still) in found.items():
                record = watched[message_id]
                if result is None:
                    if record.status is Status.OFFERED and not still:
                        # Redis lost it (restored from an old snapshot): offer it again, unless
                        # it changed meanwhile (`--take-back` withdraws it, its claim held)
                        await self._offer_again(message_id)
                    continue
                if record.status is Status.OFFERED or result.status == "delivered":
                    claim = self.journal.claim(message_id)
                    if claim is None:
                        continue  # this relay delivers it right now: its own outcome comes
                    fresh = self.journal.by_id(message_id)
                    if fresh is None or fresh.status is not record.status:
                        claim.release()
                        continue  # changed meanwhile: look again next heartbeat, forget nothing
                    claims.append(claim)
                    run = shared.settlement(fresh, result, self.node)
                    if run is not None:
                        runs.append(run)
                done.append(message_id)
            if runs:  # one transaction for the lot: a drain of many settles at the speed of one
                await asyncio.to_thread(self.journal.record_elsewhere, runs)
        finally:
            for claim in claims:
                claim.release(finished=True)
        for message_id in done:
            await shared.forget(self.redis, message_id)

    async def _offer_again(self, message_id: str) -> None:
        assert self.redis is not None
        claim = await asyncio.to_thread(self.journal.claim, message_id)
        if claim is None:
            return  # being taken back, or sent, right now: looked at again next heartbeat
        try:
            fresh = await asyncio.to_thread(self.journal.by_id, message_id)
            if fresh is not None and fresh.status is Status.OFFERED:
                await shared.offer(self.redis, fresh, self.node)
        finally:
            claim.release()

    # -- the delivering side ----------------------------------------------------------------------

    async def _consume(self) -> None:
        """One reader per target this relay reaches, each delivering its target's messages in
        order, several targets at once (as the local flusher): a slow target holds up its own
        messages only. A reader ends after its entry in flight once its target is out of reach."""
        readers: dict[str, asyncio.Task[None]] = {}
        bound = asyncio.Semaphore(CONCURRENT_TARGETS)
        try:
            while not self.stopping.is_set():
                for name in [n for n, t in readers.items() if t.done()]:
                    del readers[name]
                if self.connected:
                    for name in sorted(self.reach):
                        if name not in readers:
                            readers[name] = asyncio.create_task(self._read(name, bound))
                await self._pause(0.5)
        finally:
            await asyncio.gather(*readers.values(), return_exceptions=True)  # each ends its delivery

    async def _read(self, name: str, bound: asyncio.Semaphore) -> None:
        """Read one target's streams (its name and aliases) and deliver what this relay claims."""
        journal: Journal | None = None
        try:
            journal = await asyncio.to_thread(self._journals)
            await self._read_with(name, bound, journal)
        except ClawrelayError as e:  # the journal cannot be opened: the heartbeat says so too
            log.warning("fleet: delivering to %s: %s", name, e)
            await self._pause(self.fleet.heartbeat)
        finally:
            if journal is not None:
                journal.close()

    async def _read_with(self, name: str, bound: asyncio.Semaphore, journal: Journal) -> None:
        last_autoclaim = 0.0
        caught_up = -1  # the join it read its own pending entries at (start, rejoin)
        # where the next page of each stream's pending entries starts: this node's own (read
        # before it stopped), then those others left (XAUTOCLAIM's cursor). A head of entries
        # that stay pending (a message not deliverable from here) never hides the rest.
        own_from: dict[str, str] = {}
        own_joins = -1
        claim_from: dict[str, str] = {}
        while not self.stopping.is_set() and name in self.reach:
            if not self.connected:
                await self._pause(0.5)
                continue
            assert self.redis is not None
            try:
                routes = await asyncio.to_thread(self._routes)
            except ClawrelayError:  # said by the heartbeat; nothing is delivered on broken routes
                await self._pause(self.fleet.heartbeat)
                continue
            target = routes.config.targets.get(name)
            if target is None:
                return
            streams = [keys.outbox(n) for n in (name, *target.aliases)]
            try:
                for s in streams:
                    if s not in self._groups:
                        with contextlib.suppress(Exception):  # BUSYGROUP: it exists
                            await self.redis.xgroup_create(s, keys.GROUP, id="0", mkstream=True)
                        self._groups.add(s)
                batch: list[tuple[str, str, dict[str, str]]] = []
                if caught_up != self._joins:  # what this node had read and not settled, before
                    if own_joins != self._joins:  # from the start again after each rejoin
                        own_from, own_joins = dict.fromkeys(streams, "0"), self._joins
                    for s in list(own_from):
                        got = await self.redis.xreadgroup(
                            keys.GROUP, self.node, {s: own_from[s]}, count=PENDING_BATCH
                        )
                        entries = got[0][1] if got else []
                        batch += [(s, i, f) for i, f in entries if f]
                        if len(entries) < PENDING_BATCH:
                            del own_from[s]  # all read
                        else:
                            own_from[s] = entries[-1][0]
                    if not own_from:
                        caught_up = own_joins
                if time.monotonic() - last_autoclaim >= self.fleet.ttl / 2:
                    last_autoclaim = time.monotonic()
                    for s in streams:  # entries a relay read and left (it died, or failed)
                        out = await self.redis.xautoclaim(
                            s,
                            keys.GROUP,
                            self.node,
                            int(self.fleet.ttl * 1000),
                            claim_from.get(s, "0-0"),
                            count=PENDING_BATCH,
                        )
                        claim_from[s] = str(out[0])  # "0-0" once the whole list was looked at
                        if claim_from[s] != "0-0":
                            last_autoclaim = 0.0  # more to look at: the next page at once
                        batch += [(s, i, f) for i, f in out[1] if f]
                if not batch:
                    got = await self.redis.xreadgroup(
                        keys.GROUP,
                        self.node,
                        dict.fromkeys(streams, ">"),
                        count=PENDING_BATCH,
                        block=int(min(1.0, self.fleet.heartbeat) * 1000),
                    )
                    for s, entries in got or []:
                        batch += [(s, i, f) for i, f in entries if f]
                for s, entry, fields in batch:
                    if self.stopping.is_set():
                        break
                    async with bound:
                        await self._handle(routes, journal, s, entry, fields)
            except Exception as e:
                if not is_redis_error(e):
                    log.exception("fleet: delivering to %s", name)
                    await self._pause(1.0)
                    continue
                self._lost(e)
                await self._pause(0.5)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    async def _handle(
        self, routes: Routes, journal: Journal, stream: str, entry: str, fields: dict[str, str]
    ) -> None:
        """One entry: claim it, deliver it once (or say why not), publish what came of it."""
        from clawrelay.router import NotRetried

        assert self.redis is not None
        try:
            env, only_via, expires_ms = shared.envelope_of(fields)
        except (KeyError, ValueError, ClawrelayError):
            log.warning("fleet: a malformed entry %s in %s was dropped", entry, stream)
            await self.redis.xack(stream, keys.GROUP, entry)
            await self.redis.xdel(stream, entry)
            return
        mid = env.id
        if mid in self._unpublished or mid in self._unreleased:
            return  # its outcome here waits for Redis: not taken again meanwhile
        claimed = await shared.claim(self.redis, mid, self.holder, self.fleet.ttl, stream, entry)
        if claimed.state == "settled":
            await self.redis.xack(stream, keys.GROUP, entry)
            await self.redis.xdel(stream, entry)
            return
        record = await asyncio.to_thread(journal.by_id, mid)
        delivered_here = record is not None and record.status is Status.DELIVERED
        if claimed.state == "held" and claimed.detail.split(" ")[0] == self.node and delivered_here:
            # held by this node's relay before a restart, which delivered it and died before it
            # published that: published now, not left for another to call ambiguous
            assert record is not None
            await self._publish(mid, stream, entry, "delivered", record.via or "", "")
            return
        if claimed.state != "ok":
            return  # another relay delivers it now
        own = record is not None and record.kind == QUEUEABLE
        if delivered_here:  # it died before publishing
            assert record is not None
            await self._publish(mid, stream, entry, "delivered", record.via or "", "")
            return
        marker = shared.Marker.parse(claimed.detail) if claimed.detail else None
        if (
            marker is not None
            and marker.instance != self.instance
            and await presence.instance_of(self.redis, marker.node) == marker.instance
        ):
            # the relay that began it is alive (it lost its lock while Redis was away): it
            # publishes what came of its attempt when it can
            await self._release(mid, None)  # the lock only: its attempt record is the live relay's
            return
        try:  # the sender's name for the target may be an alias here
            env = replace(env, target=routes.resolve(env.target))
        except ClawrelayError:
            env = replace(env, target="")
        if (expires_ms and now_ms() > expires_ms) or not env.target:
            await self._release(mid, None)  # the leader expires it; others may know it
            return
        try:
            plan = [s.transport for s in routes.plan(env.target, only_via)]
        except ClawrelayError:
            await self._release(mid, None)
            return
        router = self._router(routes, journal)
        resume: set[str] | None = None
        if marker is not None and marker.instance != self.instance:
            # an attempt began elsewhere (or here, before a restart) and was never settled: resent
            # only through the transports it could have used, each saying a resend is harmless
            # by now. Its age is read in Redis's clock, which stamped its start.
            age_ms = max(0, claimed.now_ms - marker.started_ms) if claimed.now_ms else 0
            began_here = now_ms() - age_ms  # the same moment in this machine's clock
            resume = set(marker.plan)
            if not any(t in resume for t in plan) or not all(
                router.resend_safe(t, began_here) for t in marker.plan
            ):
                why = "not resent" if any(t in resume for t in plan) else "none of them is a way from here"
                detail = (
                    f"{marker.node} stopped while delivering it ({', '.join(marker.plan)}): it may "
                    f"have arrived; found by {self.node}, {why}"
                )
                if own and marker.node == self.node:  # its journal has the open attempt: said
                    await asyncio.to_thread(self._mark_ambiguous, journal, mid)  # first
                await router.aclose()
                await self._publish(
                    mid, stream, entry, "ambiguous", ",".join(marker.plan), detail, marker.node
                )
                return
            plan = [t for t in plan if t in resume]
        marked = await shared.mark(
            self.redis, mid, self.holder, shared.Marker(self.node, self.instance, 0, plan)
        )
        if marked is None:
            await router.aclose()
            return  # the lock went (this relay paused past the ttl): another has it
        renewer = asyncio.create_task(self._renew(mid))
        stopper = asyncio.create_task(self._stop_when_stopping(router))
        try:
            if own:
                assert record is not None
                d = await router.retry(record, offered=True, resume=resume)
            else:
                d = await router.deliver_for(env, only_via, resume=resume)
        except NotRetried as e:
            renewer.cancel()
            if e.reason is Reason.AMBIGUOUS:
                await self._publish(
                    mid, stream, entry, "ambiguous", "", "it may have arrived (interrupted here)"
                )
            else:
                await self._release(mid, marked)
            return
        except ClawrelayError as e:
            renewer.cancel()
            log.warning("fleet: %s: %s", mid, e)
            if isinstance(e, StateError) and await asyncio.to_thread(self._may_have_left, journal, mid):
                # the journal failed after an attempt began here: it may have left
                await self._publish(
                    mid, stream, entry, "ambiguous", ",".join(plan), f"{self.node}: {e.message}"
                )
            else:
                await self._release(mid, marked)
            return
        finally:
            renewer.cancel()
            stopper.cancel()
            await router.aclose()
        if d.status is Status.DELIVERED:
            if not own:
                self.delivered += 1
            await self._publish(mid, stream, entry, "delivered", d.via or "", "")
            if own and mid not in self._unpublished:  # its journal has it: nobody reads the result
                with contextlib.suppress(Exception):
                    await shared.forget(self.redis, mid)
        elif d.status is Status.AMBIGUOUS:
            last = d.attempts[-1] if d.attempts else None
            await self._publish(
                mid,
                stream,
                entry,
                "ambiguous",
                last.transport if last else "",
                (last.detail or "") if last else "",
            )
        else:
            await self._release(mid, marked)

    async def _stop_when_stopping(self, router: Router) -> None:
        """SIGTERM: the attempt in flight ends, and no retry or next step starts (as a flusher's)."""
        await self.stopping.wait()
        router.stop()

    async def _renew(self, message_id: str) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(self.fleet.ttl / 3)
            with contextlib.suppress(Exception):
                await shared.renew(self.redis, message_id, self.holder, self.fleet.ttl)

    async def _publish(
        self,
        message_id: str,
        stream: str,
        entry: str,
        status: str,
        via: str,
        detail: str,
        node: str | None = None,
    ) -> None:
        """Publish an outcome; when Redis does not answer, keep it and publish it on rejoining."""
        assert self.redis is not None
        args = {
            "message_id": message_id,
            "stream": stream,
            "entry": entry,
            "holder": self.holder,
            "status": status,
            "node": node or self.node,
            "via": via,
            "detail": detail,
        }
        try:
            await shared.publish(self.redis, **args)
        except Exception as e:
            if not is_redis_error(e):
                raise
            self._unpublished[message_id] = args
            self._lost(e)

    async def _release(self, message_id: str, marker: str | None) -> None:
        """Not delivered from here: let the message go; when Redis does not answer, on rejoining
        (else the attempt record of this live relay would hold the message back from others)."""
        assert self.redis is not None
        try:
            await shared.release(self.redis, message_id, self.holder, marker)
        except Exception as e:
            if not is_redis_error(e):
                raise
            self._unreleased[message_id] = marker
            self._lost(e)

    async def _publish_pending(self) -> None:
        assert self.redis is not None
        for message_id, marker in list(self._unreleased.items()):
            await shared.release(self.redis, message_id, self.holder, marker)
            del self._unreleased[message_id]
        for message_id, args in list(self._unpublished.items()):
            await shared.publish(self.redis, **args)
            del self._unpublished[message_id]

    def _may_have_left(self, journal: Journal, message_id: str) -> bool:
        """After a journal failure: an attempt began here and never ended (a `started` row, a
        delivered attempt's deferred end included), or the journal cannot say."""
        try:
            return message_id in journal.open_attempts()
        except ClawrelayError:
            return True

    def _mark_ambiguous(self, journal: Journal, message_id: str) -> None:
        claim = journal.claim(message_id)
        if claim is None:
            return
        try:
            journal.close_interrupted(message_id, lambda transport, started: False)
            journal.set_status(message_id, Status.AMBIGUOUS)
        finally:
            claim.release(finished=True)

    async def _leave(self) -> None:
        """A clean exit: offline at once, and the lease free for another."""
        if self.redis is None or not self.connected:
            return
        with contextlib.suppress(Exception):
            await self._publish_pending()
            if self.leader:
                await leader.resign(self.redis, self.node, self.token)
            await presence.leave(self.redis, self.node, self.instance)
            log.info("fleet: %s left", self.node)


def node_name(fleet: Fleet, routes: Routes) -> str:
    return fleet.node or routes.self_name
