"""The lease, its fencing token and the leader's jobs, against a real Redis, in-process.

What `fleet elect` and a paused leader rely on: the token grows with each new holder, a holder
that lost its lease changes nothing with its old token (membership, expiry), and a leader that
gave up sits out one round. Driven through the fleet's own functions (no relay), so each rule is
checked alone, at once, without waiting for heartbeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from clawrelay.config.model import Fleet
from clawrelay.fleet import keys, leader, presence
from clawrelay.fleet import shared_outbox as shared
from clawrelay.fleet.connect import connected
from clawrelay.journal import MessageRecord
from clawrelay.outcome import Status


def run(server: Any, job: Callable[[Any], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with connected(Fleet(redis=server.url, heartbeat=1.0, ttl=3.0)) as redis:
            return await job(redis)

    return asyncio.run(go())


def record(message_id: str, *, expires_ms: int) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        kind="message",
        sender="a",
        target="t",
        body="hello",
        hops=0,
        created_ms=1,
        status=Status.QUEUED,
        via=None,
        reply=None,
        runs=1,
        updated_ms=1,
        next_attempt_ms=None,
        expires_ms=expires_ms,
        batch=None,
        batch_to=None,
        only_via=None,
        attempts=[],
    )


async def published_by_b(redis: Any, message_id: str, entry: str) -> None:
    """Relay b (holder "b 1") delivered it by command and published that."""
    await shared.publish(
        redis,
        message_id=message_id,
        stream=keys.outbox("t"),
        entry=entry,
        holder="b 1",
        status="delivered",
        node="b",
        via="command",
    )


def bare_member(fleet: Fleet, node: str, journal: Any) -> Any:
    """A fleet member with a client and one journal, and no routes or router: for the steps of
    its loop that need neither (leading, a message its journal knows delivered)."""
    from clawrelay.fleet.connect import client
    from clawrelay.fleet.member import Member

    m = Member(
        fleet,
        node,
        journal=journal,
        journals=lambda: journal,
        routes=lambda: None,  # type: ignore[arg-type,return-value]
        router=lambda *_: None,  # type: ignore[arg-type,return-value]
        stopping=asyncio.Event(),
    )
    m.redis = client(fleet)
    return m


def test_each_new_holder_gets_a_larger_token_and_a_renewal_keeps_it(redis_db: Any) -> None:
    async def job(redis: Any) -> list[leader.Lease]:
        first = await leader.hold(redis, "a", 3.0)
        again = await leader.hold(redis, "a", 3.0)
        other = await leader.hold(redis, "b", 3.0)  # a holds it: b does not
        await redis.delete(keys.LEADER)  # a's lease expired
        taken = await leader.hold(redis, "b", 3.0)
        return [first, again, other, taken]

    first, again, other, taken = run(redis_db, job)
    assert (first.held, first.newly) == (True, True)
    assert (again.held, again.newly, again.token) == (True, False, first.token)
    assert other.held is False
    assert (taken.held, taken.newly) == (True, True) and taken.token > first.token


def test_a_leader_that_lost_its_lease_changes_nothing_with_its_old_token(redis_db: Any) -> None:
    """A leader that paused past its lease (a suspended VM) and wakes up believing it leads."""

    async def job(redis: Any) -> dict[str, Any]:
        old = await leader.hold(redis, "a", 3.0)
        await redis.hset(keys.SEEN, "c", "{}")
        await redis.set(keys.node("c"), "{}")  # c is alive and not yet announced
        await redis.delete(keys.LEADER)
        new = await leader.hold(redis, "b", 3.0)
        stale = await leader.membership(redis, "a", old.token, 5)
        members_after_stale = await redis.smembers(keys.MEMBERS)
        # an expired message: only the leader of the moment may call it dead
        await shared.offer(redis, record("m1", expires_ms=1), "a")
        fenced = await shared.expire(redis, f"a {old.token}", "a")
        result_after_stale = await redis.exists(keys.result("m1"))
        fresh = await leader.membership(redis, "b", new.token, 6)
        expired = await shared.expire(redis, f"b {new.token}", "b")
        return {
            "stale": stale,
            "members_after_stale": members_after_stale,
            "fenced": fenced,
            "result_after_stale": result_after_stale,
            "fresh": fresh,
            "expired": expired,
            "result": await redis.hgetall(keys.result("m1")),
            "stream": await redis.xlen(keys.outbox("t")),
        }

    out = run(redis_db, job)
    assert out["stale"] is None and out["members_after_stale"] == set()
    assert out["fenced"] == 0 and out["result_after_stale"] == 0
    assert out["fresh"] == (["c"], [])
    assert out["expired"] == 1
    assert out["result"]["status"] == "dead" and out["result"]["node"] == "b"
    assert out["stream"] == 0


def test_an_expiry_leaves_a_message_that_is_being_delivered(redis_db: Any) -> None:
    async def job(redis: Any) -> tuple[int, str]:
        lease = await leader.hold(redis, "a", 3.0)
        await shared.offer(redis, record("m2", expires_ms=1), "a")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        state = (await shared.claim(redis, "m2", "b 1", 3.0, keys.outbox("t"), entry)).state
        expired = await shared.expire(redis, f"a {lease.token}", "a")
        return expired, state

    expired, state = run(redis_db, job)
    assert (state, expired) == ("ok", 0)


def test_a_leader_that_gave_up_sits_out_one_round(redis_db: Any) -> None:
    async def job(redis: Any) -> tuple[str | None, leader.Lease, leader.Lease, str | None]:
        await leader.hold(redis, "a", 3.0)
        previous = await leader.elect(redis, 1.0)
        retry = await leader.hold(redis, "a", 3.0)  # the one that gave up: not this round
        other = await leader.hold(redis, "b", 3.0)
        return previous, retry, other, await redis.get(keys.LEADER)

    previous, retry, other, holder = run(redis_db, job)
    assert previous == "a"
    assert retry.held is False
    assert other.held is True and other.newly
    assert holder == f"b {other.token}"


def test_an_offer_is_made_once_and_a_settled_message_is_not_offered_again(redis_db: Any) -> None:
    async def job(redis: Any) -> list[str]:
        r = record("m3", expires_ms=2**62)
        first = await shared.offer(redis, r, "a")
        second = await shared.offer(redis, r, "a")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        await shared.claim(redis, "m3", "b 1", 3.0, keys.outbox("t"), entry)
        await published_by_b(redis, "m3", entry)
        await redis.delete(keys.offered("m3"))  # as if Redis had lost the offer, not the result
        third = await shared.offer(redis, r, "a")
        return [first, second, third, str(await redis.xlen(keys.outbox("t")))]

    first, second, third, length = run(redis_db, job)
    assert first.count("-") == 1  # a stream entry id
    assert second == "offered"
    assert third == "settled"
    assert length == "0"


def test_a_clean_leave_removes_only_this_instance(redis_db: Any) -> None:
    async def job(redis: Any) -> tuple[bool, bool]:
        hb = presence.Heartbeat(node="a", version="x", pid=1, instance="one", outbox=0)
        await presence.beat(redis, hb, 3.0)
        await presence.leave(redis, "a", "two")  # another instance of the same name: not its key
        kept = bool(await redis.exists(keys.node("a")))
        await presence.leave(redis, "a", "one")
        return kept, bool(await redis.exists(keys.node("a")))

    kept, left = run(redis_db, job)
    assert kept is True and left is False


def test_an_expiry_after_an_attempt_began_says_ambiguous_not_dead(redis_db: Any) -> None:
    """A relay died mid-attempt (its lock expired, its attempt record stayed) and nobody took the
    message over before it expired: it may have arrived."""

    async def job(redis: Any) -> dict[str, str]:
        lease = await leader.hold(redis, "a", 3.0)
        await shared.offer(redis, record("m4", expires_ms=1), "a")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        await shared.claim(redis, "m4", "b 1", 3.0, keys.outbox("t"), entry)
        await shared.mark(redis, "m4", "b 1", shared.Marker("b", "1", 5, ["command"]))
        await redis.delete(keys.lock("m4"))  # b died: its lock expired
        await shared.expire(redis, f"a {lease.token}", "a")
        return dict(await redis.hgetall(keys.result("m4")))

    result = run(redis_db, job)
    assert result["status"] == "ambiguous" and "never settled" in result["detail"], result


def test_a_claim_run_again_by_its_holder_is_still_its_own(redis_db: Any) -> None:
    """redis-py sends a script again when the connection drops before its reply: the second run
    must not find the lock "held" by the very relay that took it."""

    async def job(redis: Any) -> list[tuple[str, str]]:
        await shared.offer(redis, record("m5", expires_ms=2**62), "a")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        first = await shared.claim(redis, "m5", "b 1", 3.0, keys.outbox("t"), entry)
        again = await shared.claim(redis, "m5", "b 1", 3.0, keys.outbox("t"), entry)
        other = await shared.claim(redis, "m5", "c 2", 3.0, keys.outbox("t"), entry)
        return [first[:2], again[:2], other[:2]]

    first, again, other = run(redis_db, job)
    assert first == ("ok", "") and again == ("ok", "") and other == ("held", "b 1")


@pytest.mark.integration  # its own Redis, with a password no URL can hold as it is
def test_a_password_with_any_character_reaches_redis(tmp_path: Any, monkeypatch: Any) -> None:
    from redis_server import RedisServer, redis_bin

    password = "p/ss@w:rd%2F#1"
    server = RedisServer(tmp_path / "redis", password=password)
    server.start(redis_bin())
    try:
        monkeypatch.setenv("ODD_PW", password)
        fleet = Fleet(redis=f"redis://:${{ODD_PW}}@127.0.0.1:{server.port}/0", heartbeat=1.0, ttl=3.0)

        async def go() -> Any:
            async with connected(fleet) as redis:
                return await redis.ping()

        assert asyncio.run(go()) is True
    finally:
        server.stop()


def test_an_entry_the_offer_no_longer_names_is_settled_not_delivered_again(redis_db: Any) -> None:
    """Redis lost `offered:ID` (an eviction), the sender offered the message again: two entries.
    Only the one `offered:ID` names may be claimed; the other is a stale duplicate."""

    async def job(redis: Any) -> list[tuple[str, str]]:
        r = record("m6", expires_ms=2**62)
        await shared.offer(redis, r, "a")
        await redis.delete(keys.offered("m6"))
        await shared.offer(redis, r, "a")
        first, second = [e for e, _ in await redis.xrange(keys.outbox("t"))]
        stale = await shared.claim(redis, "m6", "b 1", 3.0, keys.outbox("t"), first)
        live = await shared.claim(redis, "m6", "b 1", 3.0, keys.outbox("t"), second)
        return [stale[:2], live[:2]]

    stale, live = run(redis_db, job)
    assert stale == ("settled", "") and live == ("ok", "")


def test_only_the_userinfo_and_query_of_the_url_are_percent_encoded(monkeypatch: Any) -> None:
    from clawrelay.fleet.connect import expanded

    monkeypatch.setenv("PW", "p/ss@w:rd")
    monkeypatch.setenv("ADDR", "10.0.0.5:6380")
    monkeypatch.setenv("SOCK", "/run/redis/redis.sock")
    assert expanded("redis://:${PW}@${ADDR}/0") == "redis://:p%2Fss%40w%3Ard@10.0.0.5:6380/0"
    assert (
        expanded("unix://${SOCK}?password=${PW}") == "unix:///run/redis/redis.sock?password=p%2Fss%40w%3Ard"
    )


def test_a_new_leader_is_announced_once_even_when_the_reply_to_its_lease_is_lost(
    redis_db: Any, tmp_path: Any
) -> None:
    """The lease taken, its reply lost (Redis stopped, the connection dropped): the next round
    reads "renewed". The stream and the leader's journal still say `elected` for that token,
    once, and a relay restarted under the same name within the lease does not say it again."""
    from clawrelay.fleet.member import Member
    from clawrelay.journal import Journal

    fleet = Fleet(redis=redis_db.url, heartbeat=1.0, ttl=3.0)
    journal = Journal(tmp_path)

    def member() -> Member:
        return bare_member(fleet, "a", journal)

    async def job(redis: Any) -> tuple[list[dict[str, str]], int]:
        lost = await leader.hold(redis, "a", 3.0)  # the script ran; its reply never came
        first = member()
        await first._lead(None)  # type: ignore[arg-type]
        await first._lead(None)  # type: ignore[arg-type]
        await first.redis.aclose()  # type: ignore[union-attr]
        restarted = member()  # kill -9 and started again within the lease: the same token
        await restarted._lead(None)  # type: ignore[arg-type]
        assert restarted.leader and restarted.token == lost.token
        await restarted.redis.aclose()  # type: ignore[union-attr]
        return [fields for _, fields in await redis.xrange(keys.EVENTS)], lost.token

    events, token = run(redis_db, job)
    elected = [e for e in events if e["event"] == "elected"]
    assert [(e["node"], e["token"]) for e in elected] == [("a", str(token))], events
    mine = [e for e in journal.fleet_events() if e["event"] == "elected"]
    assert [(e["node"], e["token"]) for e in mine] == [("a", token)], mine
    journal.close()


def test_an_attempt_record_carries_redis_clock_not_the_relays(redis_db: Any) -> None:
    """A relay whose clock is an hour off marks an attempt: its start is Redis's time, and a
    claim says Redis's time too, so whoever finds the record later reads its true age."""

    async def job(redis: Any) -> tuple[shared.Claim, str | None, str | None, shared.Claim]:
        await shared.offer(redis, record("m7", expires_ms=2**62), "a")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        first = await shared.claim(redis, "m7", "b 1", 3.0, keys.outbox("t"), entry)
        skewed = shared.Marker("b", "1", first.now_ms + 3_600_000, ["sessions_send"])
        stored = await shared.mark(redis, "m7", "b 1", skewed)
        refused = await shared.mark(redis, "m7", "c 2", skewed)  # not its lock: nothing marked
        await redis.delete(keys.lock("m7"))  # b died
        later = await shared.claim(redis, "m7", "c 2", 3.0, keys.outbox("t"), entry)
        return first, stored, refused, later

    first, stored, refused, later = run(redis_db, job)
    assert first.state == "ok" and first.now_ms > 1_600_000_000_000
    assert stored is not None and refused is None
    marker = shared.Marker.parse(stored)
    assert marker is not None and (marker.node, marker.instance, marker.plan) == ("b", "1", ["sessions_send"])
    assert abs(marker.started_ms - first.now_ms) < 5_000, (marker, first)
    assert later.state == "ok" and later.detail == stored and later.now_ms >= marker.started_ms


def test_a_result_waits_for_its_sender_however_long_it_is_away(redis_db: Any) -> None:
    """A sender's relay away for longer than a result used to be kept: the result is there
    until the sender reads and forgets it; once forgotten, nothing of the message is left."""

    async def job(redis: Any) -> dict[str, int]:
        lease = await leader.hold(redis, "a", 3.0)
        out = {}
        for mid, how in (("m8", "published"), ("m9", "expired")):
            await shared.offer(redis, record(mid, expires_ms=1 if how == "expired" else 2**62), "a")
        entries = {f["id"]: e for e, f in await redis.xrange(keys.outbox("t"))}
        await shared.claim(redis, "m8", "b 1", 3.0, keys.outbox("t"), entries["m8"])
        await published_by_b(redis, "m8", entries["m8"])
        await shared.expire(redis, f"a {lease.token}", "a")
        for mid in ("m8", "m9"):
            out[mid] = await redis.pttl(keys.result(mid))
            await shared.forget(redis, mid)
            out[mid + " left"] = await redis.exists(keys.result(mid), keys.offered(mid))
        return out

    out = run(redis_db, job)
    assert out == {"m8": -1, "m8 left": 0, "m9": -1, "m9 left": 0}, out


def test_a_message_taken_back_leaves_the_fleet_unless_a_relay_holds_it_or_it_is_settled(
    redis_db: Any,
) -> None:
    async def job(redis: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mid in ("w1", "w2", "w3", "w4"):
            await shared.offer(redis, record(mid, expires_ms=2**62), "a")
        entries = {f["id"]: e for e, f in await redis.xrange(keys.outbox("t"))}
        # w1: offered, nobody on it: withdrawn, and a relay that had read it finds it settled
        out["w1"] = await shared.withdraw(redis, record("w1", expires_ms=2**62))
        out["w1 claim"] = (await shared.claim(redis, "w1", "b 1", 3.0, keys.outbox("t"), entries["w1"])).state
        out["w1 offered"] = await redis.exists(keys.offered("w1"))
        # w2: a relay delivers it right now
        await shared.claim(redis, "w2", "b 1", 3.0, keys.outbox("t"), entries["w2"])
        out["w2"] = await shared.withdraw(redis, record("w2", expires_ms=2**62))
        # w3: delivered by the fleet already
        await shared.claim(redis, "w3", "b 1", 3.0, keys.outbox("t"), entries["w3"])
        await published_by_b(redis, "w3", entries["w3"])
        out["w3"] = await shared.withdraw(redis, record("w3", expires_ms=2**62))
        # w4: a relay began an attempt and died (its lock expired, its record stayed)
        await shared.claim(redis, "w4", "c 2", 3.0, keys.outbox("t"), entries["w4"])
        await shared.mark(redis, "w4", "c 2", shared.Marker("c", "2", 0, ["sessions_send"]))
        await redis.delete(keys.lock("w4"))
        out["w4"] = await shared.withdraw(redis, record("w4", expires_ms=2**62))
        out["w4 again"] = await shared.withdraw(redis, record("w4", expires_ms=2**62))  # a reply lost
        out["stream"] = sorted(f["id"] for _, f in await redis.xrange(keys.outbox("t")))
        return out

    out = run(redis_db, job)
    assert (
        out["w1"] == shared.Withdrawn("withdrawn") and out["w1 claim"] == "settled" and out["w1 offered"] == 0
    )
    assert out["w2"].state == "held" and out["w2"].holder == "b 1"
    assert out["w3"].state == "settled" and out["w3"].result is not None
    assert (out["w3"].result.status, out["w3"].result.node, out["w3"].result.via) == (
        "delivered",
        "b",
        "command",
    )
    assert out["w4"].state == "withdrawn" and out["w4"].began is not None and out["w4"].began.node == "c"
    assert out["w4 again"] == out["w4"]  # run again, it answers the same: the attempt is still told
    assert out["stream"] == ["w2"], out["stream"]  # only the one a relay holds is left


def test_a_relay_restarted_within_its_own_lock_publishes_what_its_journal_delivered(
    redis_db: Any, tmp_path: Any
) -> None:
    """b delivered it, journaled that, and was killed before publishing; restarted at once, its
    old instance's lock still holds the message. It publishes `delivered` (its journal knows),
    instead of leaving the message to a relay that would call it ambiguous."""
    from clawrelay.envelope import Envelope
    from clawrelay.journal import FLEET, Journal

    fleet = Fleet(redis=redis_db.url, heartbeat=1.0, ttl=3.0)
    journal = Journal(tmp_path)
    env = Envelope(sender="a", target="t", body="hello", kind=FLEET)
    mid = env.id
    journal.add_message(env, expires_in_s=0, status=Status.DELIVERED)

    async def job(redis: Any) -> tuple[dict[str, str], int]:
        r = record(mid, expires_ms=2**62)
        await shared.offer(redis, r, "a")
        entry, fields = (await redis.xrange(keys.outbox("t")))[0]
        await shared.claim(redis, mid, "b old-instance", 30.0, keys.outbox("t"), entry)
        m = bare_member(fleet, "b", journal)
        try:
            await m._handle(None, journal, keys.outbox("t"), entry, fields)  # type: ignore[arg-type]
        finally:
            await m.redis.aclose()
        return dict(await redis.hgetall(keys.result(mid))), await redis.xlen(keys.outbox("t"))

    result, left = run(redis_db, job)
    journal.close()
    assert (result.get("status"), result.get("node")) == ("delivered", "b"), result
    assert left == 0


def _offered_here(tmp_path: Any, redis_db: Any, monkeypatch: Any) -> tuple[Any, Any, str]:
    """A journal with one message `offered` to the fleet, and routes.yaml naming redis_db's fleet."""
    from clawrelay.envelope import Envelope
    from clawrelay.journal import Journal

    monkeypatch.setenv("FLEET_PW", redis_db.password)
    url = redis_db.url.replace(f":{redis_db.password}@", ":${FLEET_PW}@")
    (tmp_path / "routes.yaml").write_text(
        f'version: 1\nself: me\ntargets:\n  t: {{chain: [command: {{argv: ["true"]}}]}}\nfleet:\n  redis: "{url}"\n'
    )
    journal = Journal(tmp_path)
    env = Envelope(sender="me", target="t", body="hello")
    journal.add_message(env, expires_in_s=3600, status=Status.OFFERED)
    return journal, journal.by_id(env.id), str(tmp_path / "routes.yaml")


def test_a_take_back_reads_the_message_again_under_its_claim(
    redis_db: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """`outbox retry ID --take-back` listed it offered; the relay settled it delivered meanwhile.
    Taking it back leaves it delivered (it would be sent again as queued)."""
    from clawrelay.cli.outbox import _take_back

    journal, listed, config = _offered_here(tmp_path, redis_db, monkeypatch)
    journal.set_status(listed.id, Status.DELIVERED)  # the relay's settle, after the listing
    record, began = _take_back(journal, listed, True, config)
    assert record.status is Status.DELIVERED and began is None
    assert journal.by_id(listed.id).status is Status.DELIVERED  # type: ignore[union-attr]
    journal.close()


def test_a_take_back_of_a_message_whose_attempt_never_ended_records_why_it_may_have_arrived(
    redis_db: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from clawrelay.cli.outbox import _take_back

    journal, offered, config = _offered_here(tmp_path, redis_db, monkeypatch)

    async def job(redis: Any) -> None:
        await shared.offer(redis, offered, "me")
        entry = (await redis.xrange(keys.outbox("t")))[0][0]
        await shared.claim(redis, offered.id, "c 2", 3.0, keys.outbox("t"), entry)
        await shared.mark(redis, offered.id, "c 2", shared.Marker("c", "2", 0, ["sessions_send"]))
        await redis.delete(keys.lock(offered.id))  # c died mid-attempt

    run(redis_db, job)
    record, began = _take_back(journal, offered, True, config)
    assert record.status is Status.AMBIGUOUS and began is not None and "c began delivering it" in began
    last = record.attempts[-1]
    assert last.carrier == "fleet:c" and "may have arrived" in (last.detail or ""), last
    journal.close()


def test_the_relay_does_not_offer_again_a_message_being_taken_back(redis_db: Any, tmp_path: Any) -> None:
    """Redis has neither the offer nor a result (as right after `--take-back` withdrew it): the
    relay's settle offers it again only once nobody holds its claim and it is still offered."""
    from clawrelay.envelope import Envelope
    from clawrelay.journal import Journal

    fleet = Fleet(redis=redis_db.url, heartbeat=1.0, ttl=3.0)
    journal = Journal(tmp_path)
    env = Envelope(sender="me", target="t", body="hello")
    journal.add_message(env, expires_in_s=3600, status=Status.OFFERED)

    async def job(redis: Any) -> list[int]:
        m = bare_member(fleet, "me", journal)
        lengths = []
        try:
            held = journal.claim(env.id)  # `--take-back` holds it while it withdraws
            assert held is not None
            await m._settle()
            lengths.append(await redis.xlen(keys.outbox("t")))
            held.release()
            await m._settle()
            lengths.append(await redis.xlen(keys.outbox("t")))
        finally:
            await m.redis.aclose()
        return lengths

    assert run(redis_db, job) == [0, 1]
    journal.close()


def test_a_pooled_connection_closed_by_a_redis_restart_is_retried_not_an_outage(redis_db: Any) -> None:
    """After Redis restarts, each connection the relay's client kept is closed: its next command
    is retried once on a new connection, not taken for Redis being away (a relay that rejoined
    was set apart again, once per stale connection, and said so in its log)."""
    from clawrelay.fleet.connect import client

    fleet = Fleet(redis=redis_db.url, heartbeat=1.0, ttl=3.0)

    async def before(redis: Any) -> None:
        await asyncio.gather(*(redis.ping() for _ in range(3)))  # three connections in the pool

    async def go() -> list[Any]:
        redis = client(fleet)
        try:
            await before(redis)
            redis_db.restart()
            async with redis.pipeline(transaction=False) as pipe:
                pipe.exists(keys.LEADER)
                piped = await pipe.execute()
            return [await redis.set("fleet:k", "v"), piped, await redis.xlen(keys.outbox("t"))]
        finally:
            await redis.aclose()

    assert asyncio.run(go()) == [True, [0], 0]
