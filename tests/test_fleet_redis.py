"""The fleet for real: `clawrelay serve` processes, each with its own state dir and routes.yaml,
sharing one real Redis (tests/redis_server.py). Presence and the leader's lease, `fleet status`
and `fleet elect`, the shared outbox delivering a message its sender could not, and what each
relay does when Redis refuses the password, is not there at start, or goes away.

Heartbeats of 0.5 s and a ttl of 2 s (tests/fleet_harness.py) keep each test to a few seconds.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_harness import FLEET_PW, Fleet, Relay, command_target, dead_target, lines
from redis_server import RedisServer, redis_bin

from clawrelay import __version__
from clawrelay.fleet import keys
from clawrelay.journal import Journal

pytestmark = pytest.mark.integration  # the tests with their own Redis start it in their body


@pytest.fixture
def fleet(tmp_path: Path, redis_db: RedisServer) -> Iterator[Fleet]:
    made = Fleet(tmp_path, redis_db)
    yield made
    made.close()


def record(relay: Relay, message_id: str) -> dict[str, Any] | None:
    """The message as `log --json` of that relay's machine shows it."""
    r = relay.env.run("log", "--json")
    assert r.code == 0, r.err
    found: list[dict[str, Any]] = r.json()  # type: ignore[assignment]
    return next((m for m in found if m["id"] == message_id), None)


def outbox(relay: Relay) -> list[dict[str, Any]]:
    r = relay.env.run("outbox", "list", "--json")
    assert r.code == 0, r.err
    return r.json()  # type: ignore[return-value]


def send_queued(relay: Relay, target: str, body: str) -> str:
    """A send its own relay cannot deliver: queued (exit 1), its id."""
    r = relay.env.run("send", target, body, "--json")
    assert r.code == 1, (r.code, r.out, r.err)
    doc = r.json()
    assert doc["queued"] is True, doc  # type: ignore[index]
    return doc["id"]  # type: ignore[index,no-any-return]


def fleet_events(relay: Relay) -> list[dict[str, object]]:
    """What that relay's journal recorded of the fleet (what it announced as the leader)."""
    journal = Journal(relay.env.home)
    try:
        return journal.fleet_events(100)
    finally:
        journal.close()


def one_line(err: str) -> str:
    got = err.strip().splitlines()
    assert len(got) == 1, err
    assert "Traceback" not in err
    return got[0]


# -- presence and the leader --------------------------------------------------------------------


def test_three_relays_are_alive_with_one_leader_their_versions_and_what_they_reach(
    fleet: Fleet, tmp_path: Path, redis_db: RedisServer
) -> None:
    envs = [
        fleet.env("a", dead_target("t")),
        fleet.env("b", command_target("t", tmp_path / "b.out")),
        fleet.env("c", command_target("other", tmp_path / "c.out") + dead_target("t")),
    ]
    a, b, c = fleet.start_all(envs)
    pids = {r.name: r.pid for r in (a, b, c)}
    want_reach: dict[str, dict[str, list[str]]] = {
        "a": {},
        "b": {"t": ["command"]},
        "c": {"other": ["command"]},
    }

    def settled() -> dict[str, Any] | None:
        view = fleet.status()
        nodes = {n["node"]: n for n in view["nodes"]}
        ok = (
            set(nodes) == {"a", "b", "c"}
            and all(n["alive"] for n in nodes.values())
            and {name: n["reach"] for name, n in nodes.items()} == want_reach
            and view["leader"] is not None
        )
        return view if ok else None

    view = fleet.wait(settled, 10, "three alive nodes, each reaching what it can, and a leader")
    assert view["leader"] in {"a", "b", "c"} and isinstance(view["token"], int) and view["token"] >= 1
    for n in view["nodes"]:
        assert n["version"] == __version__
        assert n["pid"] == pids[n["node"]]
        assert n["outbox"] == 0 and n["last_seen_ms"] > 0
    # one lease was handed out, once, to the node that holds it
    elected = [
        f for _, f in redis_db.client(decode_responses=True).xrange(keys.EVENTS) if f["event"] == "elected"
    ]
    assert [(e["node"], int(e["token"])) for e in elected] == [(view["leader"], view["token"])]
    # the leader announced each join in the stream and in its own journal; the others announced nothing
    leader = {"a": a, "b": b, "c": c}[view["leader"]]
    fleet.wait(
        lambda: {e["node"] for e in fleet_events(leader) if e["event"] == "joined"} == {"a", "b", "c"},
        5,
        "the leader's journal records the three joins",
    )
    assert [e["node"] for e in fleet_events(leader) if e["event"] == "elected"] == [view["leader"]]
    for other in {a, b, c} - {leader}:
        assert fleet_events(other) == []
    joined = [e["node"] for e in fleet.status()["events"] if e["event"] == "joined"]
    assert sorted(joined) == ["a", "b", "c"]

    human = fleet.envs[1].run("fleet", "status")
    assert human.code == 0, human.err
    assert f"leader: {view['leader']} (token {view['token']})" in human.out
    rows = {
        line.split()[0]: line for line in human.out.splitlines() if line.split()[:1] in (["a"], ["b"], ["c"])
    }
    assert set(rows) == {"a", "b", "c"}, human.out
    assert all(" alive " in row and __version__ in row for row in rows.values()), human.out
    assert rows[view["leader"]].split()[1] == "*", human.out
    assert "t (command)" in rows["b"] and "other (command)" in rows["c"], human.out
    assert fleet.status(fleet.envs[2])["leader"] == view["leader"]  # every node sees the same fleet


def test_fleet_elect_hands_the_lease_to_another_node_with_a_larger_token(
    fleet: Fleet, tmp_path: Path
) -> None:
    relays = fleet.start_all(
        [fleet.env(n, command_target("t", tmp_path / f"{n}.out")) for n in ("a", "b", "c")]
    )
    by_name = {r.name: r for r in relays}
    old = fleet.wait(lambda: fleet.status()["leader"] and fleet.status(), 10, "a leader")
    fleet.wait(lambda: by_name[old["leader"]].stat()["fleet"]["leader"], 5, "the leader knows it leads")

    started = time.monotonic()
    r = fleet.envs[0].run("fleet", "elect", "--json")
    took = time.monotonic() - started
    assert r.code == 0, r.err
    out = r.json()
    assert out["previous"] == old["leader"]  # type: ignore[index]
    new, token = out["leader"], out["token"]  # type: ignore[index]
    assert new in {"a", "b", "c"} and new != old["leader"]
    assert token > old["token"]
    assert took < fleet.ttl + fleet.heartbeat + 1.0, f"the new leader took {took:.1f}s"

    view = fleet.status()
    assert (view["leader"], view["token"]) == (new, token)
    assert {"event": "elected", "node": new, "token": token} in [
        {k: e[k] for k in ("event", "node", "token")} for e in view["events"]
    ]
    # each relay knows where it stands within a heartbeat or two; the new leader journaled it
    fleet.wait(lambda: by_name[new].stat()["fleet"]["leader"], 3, "the new leader knows it leads")
    fleet.wait(
        lambda: not by_name[old["leader"]].stat()["fleet"]["leader"], 3, "the old leader knows it does not"
    )
    fleet.wait(
        lambda: (
            {"event": "elected", "node": new, "token": token}
            in [{k: e[k] for k in ("event", "node", "token")} for e in fleet_events(by_name[new])]
        ),
        3,
        "the new leader's journal records its election",
    )

    again = fleet.envs[1].run("fleet", "elect")  # the human form, from another machine
    assert again.code == 0, again.err
    assert again.out.startswith("leader: ") and f"(was {new})" in again.out, again.out
    assert fleet.status()["leader"] not in (None, new)


def test_fleet_elect_without_a_live_relay_exits_1_and_says_so(fleet: Fleet, tmp_path: Path) -> None:
    env = fleet.env("a", command_target("t", tmp_path / "a.out"))  # configured, never started
    r = env.run("fleet", "elect", "--wait", "0.5s", "--json")
    assert r.code == 1, (r.out, r.err)
    assert r.json() == {"previous": None, "leader": None, "token": None}
    human = env.run("fleet", "elect", "--wait", "0.3s")
    assert human.code == 1 and "no relay took the lease within 0.3s" in human.out, human


def test_a_relay_stopped_by_sigterm_leaves_at_once_and_a_leader_that_leaves_is_replaced(
    tmp_path: Path, redis_db: RedisServer
) -> None:
    # a ttl far longer than a heartbeat: a node gone only by its expiry would still look alive
    fleet = Fleet(tmp_path, redis_db, heartbeat=0.5, ttl=6.0)
    try:
        relays = fleet.start_all([fleet.env(n, command_target("t", tmp_path / f"{n}.out")) for n in "abc"])
        by_name = {r.name: r for r in relays}
        # the leader announces a join at its next round: wait for the three, so each can be seen leaving
        fleet.wait(
            lambda: (
                {e["node"] for e in fleet.status()["events"] if e["event"] == "joined"} == {"a", "b", "c"}
            ),
            10,
            "three joined",
        )
        first = fleet.status()
        assert {n["node"] for n in first["nodes"] if n["alive"]} == {"a", "b", "c"} and first["leader"]
        leader = first["leader"]
        follower = sorted({"a", "b", "c"} - {leader})[0]
        watcher = fleet.envs[[r.name for r in relays].index(sorted({"a", "b", "c"} - {leader, follower})[0])]

        code, _, err = by_name[follower].stop()
        assert code == 0 and "Traceback" not in err, err
        view = fleet.status(watcher)
        assert {n["node"]: n["alive"] for n in view["nodes"]}[follower] is False  # now, not after the ttl
        assert (view["leader"], view["token"]) == (
            leader,
            first["token"],
        )  # a follower leaving changes no lease

        code, _, err = by_name[leader].stop()
        gone = time.monotonic()
        assert code == 0 and "Traceback" not in err, err
        view = fleet.status(watcher)
        assert {n["node"]: n["alive"] for n in view["nodes"]}[leader] is False
        after = fleet.wait(
            lambda: fleet.status(watcher)["leader"] not in (None, leader) and fleet.status(watcher),
            3 * fleet.heartbeat + 1.0,
            "another relay holds the lease within a heartbeat or two",
        )
        assert time.monotonic() - gone < fleet.ttl, "the lease passed only when it expired"
        survivor = after["leader"]
        assert survivor not in (leader, follower) and after["token"] > first["token"]
        assert fleet.alive(watcher) == {survivor}
        fleet.wait(
            lambda: (
                {e["node"] for e in fleet.status(watcher)["events"] if e["event"] == "left"}
                == {leader, follower}
            ),
            3,
            "both departures announced",
        )
    finally:
        fleet.close()


# -- the shared outbox -----------------------------------------------------------------------------


def test_a_message_its_sender_cannot_deliver_is_delivered_once_by_the_relay_that_reaches_its_target(
    fleet: Fleet, tmp_path: Path, redis_db: RedisServer
) -> None:
    b_out, c_out = tmp_path / "b.out", tmp_path / "c.out"
    # a and c know t but cannot reach it (their gateway is down); b, started later, can
    a, c = fleet.start_all(
        [fleet.env("a", dead_target("t")), fleet.env("c", dead_target("t") + command_target("other", c_out))]
    )
    env_b = fleet.env("b", command_target("t", b_out))
    fleet.wait(lambda: fleet.alive() == {"a", "c"}, 10, "a and c alive")

    mid = send_queued(a, "t", "hello from a")
    # offered to the fleet at a's next heartbeat: no relay reaches t yet, so it waits there
    fleet.wait(lambda: [(m["id"], m["status"]) for m in outbox(a)] == [(mid, "offered")], 5, "a offers it")
    assert redis_db.cli("XLEN", keys.outbox("t")) == "1"
    refused = a.env.run("outbox", "retry", mid)
    assert refused.code == 2 and "offered to the fleet" in refused.err, refused
    time.sleep(3 * fleet.heartbeat)  # c's rounds: it reaches no t, so it takes nothing
    assert record(c, mid) is None
    assert redis_db.cli("EXISTS", keys.lock(mid)) == "0"

    b = fleet.start(env_b)
    settled = fleet.wait(
        lambda: (m := record(a, mid)) is not None and m["status"] == "delivered" and m,
        10,
        "a's journal says b delivered it",
    )
    last = settled["attempts"][-1]
    assert last["carrier"] == "fleet:b"
    assert last["transport"] == "command"
    assert last["outcome"] == "delivered"
    assert last["detail"] == "delivered by b via command"
    assert settled["via"] == "command"
    assert outbox(a) == []
    assert lines(b_out) == [mid]
    at_b = record(b, mid)
    assert at_b is not None and at_b["kind"] == "fleet" and at_b["status"] == "delivered"
    assert at_b["body"] == "hello from a" and at_b["sender"] == "a"
    assert record(c, mid) is None and not c_out.exists()

    # nothing of it is left in Redis, and nobody delivers it again
    time.sleep(fleet.ttl + fleet.heartbeat)
    assert lines(b_out) == [mid]
    assert redis_db.cli("XLEN", keys.outbox("t")) == "0"
    left = [k for k in redis_db.cli("KEYS", keys.PREFIX + "*").splitlines() if mid in k]
    assert left == []
    assert record(a, mid)["status"] == "delivered"  # type: ignore[index]


def test_two_relays_that_reach_the_target_deliver_each_message_once_between_them(
    fleet: Fleet, tmp_path: Path
) -> None:
    outs = {"b": tmp_path / "b.out", "c": tmp_path / "c.out"}
    a, _, _ = fleet.start_all(
        [
            fleet.env("a", dead_target("t")),
            fleet.env("b", command_target("t", outs["b"])),
            fleet.env("c", command_target("t", outs["c"])),
        ]
    )
    fleet.wait(
        lambda: (
            {n["node"] for n in fleet.status()["nodes"] if n["alive"] and "t" in n["reach"]} == {"b", "c"}
        ),
        10,
        "b and c reach t",
    )
    ids = [send_queued(a, "t", f"message {i}") for i in range(6)]

    def all_delivered() -> list[dict[str, Any]] | None:
        got = [record(a, i) for i in ids]
        return got if all(m is not None and m["status"] == "delivered" for m in got) else None  # type: ignore[return-value]

    settled = fleet.wait(all_delivered, 15, "a's journal says all six delivered")
    time.sleep(fleet.ttl)  # a second delivery would show by now
    delivered = {name: lines(path) for name, path in outs.items()}
    assert sorted(delivered["b"] + delivered["c"]) == sorted(ids)  # each once, by one of them
    for m in settled:
        by = "b" if m["id"] in delivered["b"] else "c"
        last = m["attempts"][-1]
        assert (last["carrier"], last["detail"]) == (f"fleet:{by}", f"delivered by {by} via command")
    assert outbox(a) == []


def test_a_slow_target_does_not_hold_up_the_fleets_deliveries_to_another(
    fleet: Fleet, tmp_path: Path
) -> None:
    """b delivers for two targets; one message takes 8 s to deliver. The other target's messages
    go meanwhile, as the local flusher's would (targets at once, each in order)."""
    started, slow_out, fast_out = tmp_path / "slow.started", tmp_path / "slow.out", tmp_path / "fast.out"
    slow = json.dumps(
        [
            "sh",
            "-c",
            f"echo $CLAWRELAY_ID >> {shlex.quote(str(started))}; sleep 8;"
            f" echo $CLAWRELAY_ID >> {shlex.quote(str(slow_out))}",
        ]
    )
    a, _ = fleet.start_all(
        [
            fleet.env("a", dead_target("slow") + dead_target("fast")),
            fleet.env(
                "b",
                f"  slow: {{chain: [command: {{argv: {slow}, retries: 0, timeout: 30s}}]}}\n"
                + command_target("fast", fast_out),
            ),
        ]
    )
    fleet.wait(
        lambda: (
            {t for n in fleet.status()["nodes"] if n["node"] == "b" for t in n["reach"]} == {"slow", "fast"}
        ),
        10,
        "b reaches both targets",
    )
    slow_id = send_queued(a, "slow", "this one takes a while")
    fleet.wait(lambda: lines(started) == [slow_id], 10, "b starts delivering the slow one")
    fast_ids = [send_queued(a, "fast", f"quick {i}") for i in range(3)]
    fleet.wait(lambda: lines(fast_out) == fast_ids, 6, "the fast target's messages, in order")
    assert lines(slow_out) == [], "the fast ones waited for the slow one"
    fleet.wait(lambda: lines(slow_out) == [slow_id], 15, "the slow one, once")
    fleet.wait(lambda: outbox(a) == [], 10, "a's outbox empty: all four settled")
    assert lines(started) == [slow_id]


def test_an_attempt_a_dead_relay_began_is_not_resent_through_another_way(
    fleet: Fleet, tmp_path: Path, redis_db: RedisServer
) -> None:
    """x began delivering it through sessions_send and died; b reaches the target only by
    command. A gateway's idempotency covers a resend through that gateway, not through another
    way: the message is ambiguous, said so, and not sent again."""
    b_out = tmp_path / "b.out"
    (a,) = fleet.start_all([fleet.env("a", dead_target("t"))])
    fleet.wait(lambda: fleet.alive() == {"a"}, 10, "a alive")
    mid = send_queued(a, "t", "began elsewhere")
    fleet.wait(lambda: [m["status"] for m in outbox(a)] == ["offered"], 5, "a offers it")
    secs, micros = redis_db.cli("TIME").split()
    began = {
        "node": "x",
        "instance": "gone",
        "started_ms": int(secs) * 1000 + int(micros) // 1000,
        "plan": ["sessions_send"],
    }  # x's attempt a moment ago, by Redis's clock
    redis_db.cli("SET", keys.attempt(mid), json.dumps(began))
    fleet.start(fleet.env("b", command_target("t", b_out)))
    settled = fleet.wait(
        lambda: (m := record(a, mid)) is not None and m["status"] == "ambiguous" and m, 15, "a hears of it"
    )
    last = settled["attempts"][-1]
    assert last["carrier"] == "fleet:x" and "x stopped while delivering it" in last["detail"], last
    assert "none of them is a way from here" in last["detail"], last
    time.sleep(fleet.ttl)
    assert lines(b_out) == []


def test_a_message_taken_back_is_withdrawn_from_the_fleet(
    fleet: Fleet, tmp_path: Path, redis_db: RedisServer
) -> None:
    """`outbox purge ID --take-back`: purged here and gone from the fleet, so the relay that
    comes to reach the target later does not deliver it after all."""
    b_out = tmp_path / "b.out"
    (a,) = fleet.start_all([fleet.env("a", dead_target("t"))])
    mid = send_queued(a, "t", "changed my mind")
    fleet.wait(lambda: [m["status"] for m in outbox(a)] == ["offered"], 10, "a offers it")
    r = a.env.run("outbox", "purge", mid, "--take-back")
    assert r.code == 0, r
    assert redis_db.cli("XLEN", keys.outbox("t")) == "0"
    assert redis_db.cli("EXISTS", keys.offered(mid)) == "0"
    fleet.start(fleet.env("b", command_target("t", b_out)))
    fleet.wait(
        lambda: any(n["node"] == "b" and "t" in n["reach"] for n in fleet.status()["nodes"]),
        10,
        "b reaches t",
    )
    time.sleep(fleet.ttl + 2 * fleet.heartbeat)
    assert lines(b_out) == []
    assert record(a, mid)["status"] == "purged"  # type: ignore[index]


# -- Redis refusing, absent, going away -----------------------------------------------------------


@pytest.mark.parametrize("how", ["variable", "literal"])
def test_a_wrong_password_is_one_line_and_exit_2_and_never_printed(
    tmp_path: Path, redis_db: RedisServer, how: str
) -> None:
    wrong = "WrongPw-7d41c9e2b0"
    fleet = Fleet(tmp_path, redis_db)
    url = redis_db.url.replace(redis_db.password, f"${{{FLEET_PW}}}" if how == "variable" else wrong)
    env = fleet.env("a", command_target("t", tmp_path / "a.out"), url=url)
    env.vars[FLEET_PW] = wrong
    try:
        for args in (["fleet", "status"], ["fleet", "elect"]):
            r = env.run(*args)
            assert r.code == 2, (args, r)
            line = one_line(r.err)
            assert f"Redis at 127.0.0.1:{redis_db.port} refused the credentials" in line, line
            assert wrong not in r.out + r.err and redis_db.password not in r.out + r.err
        j = env.run("fleet", "status", "--json")
        assert j.code == 2
        assert j.json()["error"]["reason"] == "fleet_auth"  # type: ignore[index]
        assert wrong not in j.out + j.err

        started = time.monotonic()
        serve = env.run("serve", "--interval", "1h", fork=False, timeout=30)
        assert serve.code == 2, serve
        line = one_line(serve.err)
        assert "refused the credentials" in line and wrong not in serve.out + serve.err, serve
        assert time.monotonic() - started < 15
        assert redis_db.cli("KEYS", keys.PREFIX + "*") == ""  # it never joined
    finally:
        fleet.close()


def test_a_relay_started_while_redis_is_down_delivers_locally_and_joins_when_it_answers(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")  # its port is free: nothing answers there yet
    fleet = Fleet(tmp_path, server)
    out = tmp_path / "a.out"
    env = fleet.env("a", command_target("t", out))
    try:
        r = env.run("fleet", "status")
        assert r.code == 1, r
        assert f"cannot reach Redis at 127.0.0.1:{server.port}" in one_line(r.err)
        assert server.password not in r.out + r.err
        j = env.run("fleet", "status", "--json")
        assert j.code == 1 and j.json()["error"]["reason"] == "fleet_unreachable"  # type: ignore[index]

        a = fleet.start(env)
        member = fleet.wait(
            lambda: (a.stat().get("fleet") or {}).get("error") and a.stat()["fleet"], 5, "a round"
        )
        assert member["connected"] is False and "cannot reach Redis" in member["error"]
        sent = env.run("send", "t", "while redis is down", "--json")
        assert sent.code == 0, sent
        assert lines(out) == [sent.json()["id"]]  # type: ignore[index]

        server.start(redis_bin())
        fleet.wait(lambda: fleet.alive() == {"a"}, 6 * fleet.heartbeat + 2, "a joins once Redis answers")
        assert a.stat()["fleet"]["connected"] is True
        assert fleet.status()["leader"] == "a"

        code, _, err = a.stop()
        assert code == 0 and "Traceback" not in err, err
        assert "starting without the fleet" in err, err
        assert server.password not in err
    finally:
        fleet.close()
        server.stop()


def test_a_relay_keeps_delivering_while_redis_is_away_and_rejoins_when_it_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start(redis_bin())
    fleet = Fleet(tmp_path, server)
    out = tmp_path / "a.out"
    try:
        a = fleet.relay("a", command_target("t", out))
        fleet.wait(lambda: fleet.alive() == {"a"}, 10, "a joins")

        server.stop()
        fleet.wait(lambda: a.stat()["fleet"]["connected"] is False, 5, "a notices Redis went away")
        assert "cannot reach Redis" in a.stat()["fleet"]["error"]
        started = time.monotonic()
        sent = a.env.run("send", "t", "while redis is away", "--json")
        assert sent.code == 0, sent
        assert time.monotonic() - started < 5, "a send waited on Redis"
        assert lines(out) == [sent.json()["id"]]  # type: ignore[index]

        back = int(time.time() * 1000)
        server.start(redis_bin())  # the same port, password and data
        node = fleet.wait(
            lambda: next(
                (n for n in fleet.status()["nodes"] if n["alive"] and n["last_seen_ms"] > back), None
            ),
            6 * fleet.heartbeat + 2,
            "a heartbeats again",
        )
        assert node["node"] == "a" and node["pid"] == a.pid
        assert a.stat()["fleet"]["connected"] is True
        code, _, err = a.stop()
        assert code == 0 and "Traceback" not in err, err
    finally:
        fleet.close()
        server.stop()


def test_doctor_shows_the_fleet_alive_and_its_leader(tmp_path: Path, redis_db: RedisServer) -> None:
    fleet = Fleet(tmp_path, redis_db)
    try:
        a = fleet.relay("a", command_target("t", tmp_path / "a.out"))
        fleet.wait(lambda: fleet.status()["leader"] == "a", what="a leads")
        r = a.env.run("doctor", "--json")
        line = [c for c in r.json()["checks"] if c["subject"] == "fleet"]  # type: ignore[index]
        assert len(line) == 1 and line[0]["ok"], r.out
        assert "1 of 1 relays alive (a), leader a" in line[0]["detail"], line
        assert redis_db.password not in r.out + r.err
    finally:
        fleet.close()


def test_a_relay_that_knows_the_target_by_an_alias_delivers_it(tmp_path: Path, redis_db: RedisServer) -> None:
    """Each machine names its targets: the sender's `mini` is b's `xiaom-mac`, alias `mini`."""
    fleet = Fleet(tmp_path, redis_db)
    out = tmp_path / "b.out"
    try:
        a = fleet.relay("a", dead_target("mini"))
        b = fleet.relay(
            "b", command_target("xiaom-mac", out).replace("{chain:", "{aliases: [mini], chain:", 1)
        )
        fleet.wait(lambda: fleet.alive() == {"a", "b"}, what="both alive")
        sent = a.env.run("send", "mini", "hello by another name", "--json")
        assert sent.code == 1, sent
        mid = sent.json()["id"]  # type: ignore[index]

        def settled() -> dict[str, Any] | None:
            found = {m["id"]: m for m in a.env.run("log", "--json").json()}  # type: ignore[union-attr]
            return found[mid] if found[mid]["status"] == "delivered" else None

        record = fleet.wait(settled, what="a settles it")
        assert record["attempts"][-1]["detail"] == "delivered by b via command", record
        assert lines(out) == [mid]
        there = {m["id"]: m for m in b.env.run("log", "--json").json()}  # type: ignore[union-attr]
        assert there[mid]["target"] == "xiaom-mac" and there[mid]["kind"] == "fleet", there[mid]
    finally:
        fleet.close()


def test_a_message_whose_sender_died_mid_attempt_is_not_offered_as_if_nothing_left(
    tmp_path: Path, redis_db: RedisServer
) -> None:
    """A `--no-relay send` killed during a `command` step while the relay runs: its attempt may
    have arrived, so the relay says ambiguous instead of offering it to another relay."""
    from clawrelay.envelope import Envelope
    from clawrelay.journal import now_ms
    from clawrelay.outcome import Attempt, Delivery, Outcome, Status

    fleet = Fleet(tmp_path, redis_db)
    try:
        a = fleet.relay("a", dead_target("t"))
        fleet.wait(lambda: fleet.status()["leader"] == "a", what="a leads")
        journal = Journal(a.env.home)  # what the killed sender left, written beside the running relay
        try:
            env = Envelope(sender="a", target="t", body="it may have arrived")
            journal.add_message(env, expires_in_s=3600)
            run = journal.begin_run(env.id)
            journal.start_attempt(
                env.id,
                Attempt(
                    step=1, transport="command", outcome=Outcome.STARTED, started_ms=now_ms() - 500, run=run
                ),
            )
            journal.finish(Delivery(env.id, "t", Status.QUEUED), backoff_s=3600)  # not due: the flusher waits
        finally:
            journal.close()

        # four heartbeats, looking only at Redis: any command that opens the journal (`log`)
        # would recover the attempt itself, which is not what is under test
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            assert redis_db.cli("EXISTS", keys.offered(env.id)) == "0", "offered as if nothing had left"
            time.sleep(0.1)
        assert redis_db.cli("XLEN", keys.outbox("t")) == "0"
        journal = Journal(a.env.home)
        try:
            found = journal.by_id(env.id)
        finally:
            journal.close()
        assert found is not None and found.status is Status.AMBIGUOUS, found
        assert found.attempts[0].reason == "interrupted", found.attempts
    finally:
        fleet.close()
