"""The fleet with a real OpenClaw gateway (the session's, tests/peer.py) behind its targets: a
message one relay cannot deliver reaches the gateway through another relay's `sessions_send`, and
the leader tells a `notify` target what the fleet did (elected, joined, left) as system events,
by the gateway's `wake`.

Real Redis (the `redis_db` fixture), real `clawrelay serve` processes (tests/fleet_harness.py),
heartbeats of 0.5 s and a ttl of 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Env
from fleet_harness import Fleet, Relay, command_target, dead_target
from peer import Gateway
from redis_server import RedisServer

pytestmark = pytest.mark.integration

TOKEN_ENV = "TEST_GW_TOKEN"


@pytest.fixture
def fleet(tmp_path: Path, redis_db: RedisServer) -> Iterator[Fleet]:
    made = Fleet(tmp_path, redis_db)
    yield made
    made.close()


def gateway_env(fleet: Fleet, name: str, gateway: Gateway, session: str, *, fleet_extra: str = "") -> Env:
    """A relay's Env whose target `xiaom` is `sessions_send` to the session gateway (gateway `gw`
    in its routes, the token by reference, as a machine would have it)."""
    target = f'  xiaom: {{session: "{session}", chain: [sessions_send: {{gateway: gw, timeout: 20s}}]}}\n'
    env = fleet.env(name, target, fleet_extra=fleet_extra)
    routes = env.tmp / "routes.yaml"
    text = routes.read_text()
    assert text.count("gateways:\n") == 1, text
    routes.write_text(
        text.replace("gateways:\n", f'gateways:\n  gw: {{url: "{gateway.url}", token: "${{{TOKEN_ENV}}}"}}\n')
    )
    env.vars[TOKEN_ENV] = gateway.token
    return env


def journal(relay: Relay) -> list[dict[str, Any]]:
    """`log --json` of that relay's machine."""
    r = relay.env.run("log", "--json")
    assert r.code == 0, r.err
    return r.json()  # type: ignore[return-value]


def record(relay: Relay, message_id: str) -> dict[str, Any] | None:
    return next((m for m in journal(relay) if m["id"] == message_id), None)


def events_to(relay: Relay, target: str) -> dict[str, dict[str, Any]]:
    """The events in that relay's journal to `target`, by body."""
    return {m["body"]: m for m in journal(relay) if m["kind"] == "event" and m["target"] == target}


# -- a message its sender cannot deliver, delivered by another relay over the gateway ------------


def test_a_message_a_cannot_deliver_reaches_the_gateway_through_b(fleet: Fleet, gateway: Gateway) -> None:
    """a's route to xiaom is a gateway that is down; b's is the session gateway. a's send fails
    and is queued, offered, and b delivers it over sessions_send under a's message id, once."""
    session = "agent:main:fleet-through-b"
    started = time.monotonic()
    a, b = fleet.start_all([fleet.env("a", dead_target("xiaom")), gateway_env(fleet, "b", gateway, session)])

    def b_reaches() -> bool:
        nodes = {n["node"]: n for n in fleet.status()["nodes"] if n["alive"]}
        return set(nodes) == {"a", "b"} and nodes["b"]["reach"] == {"xiaom": ["sessions_send"]}

    fleet.wait(b_reaches, 15, "a and b alive, b reaching xiaom over sessions_send")
    assert {n["node"]: n["reach"] for n in fleet.status()["nodes"]}["a"] == {}

    body = "the backup on a finished, tell xiaom"
    r = a.env.run("send", "xiaom", body, "--json")
    assert r.code == 1, (r.code, r.out, r.err)
    sent = r.json()
    assert sent["queued"] is True and sent["status"] == "failed", sent  # type: ignore[index]
    mid: str = sent["id"]  # type: ignore[index]
    (local,) = sent["attempts"]  # type: ignore[index]
    assert (local["transport"], local["outcome"]) == ("sessions_send", "failed"), local
    assert local["reason"] == "connection_refused", local

    settled = fleet.wait(
        lambda: (m := record(a, mid)) is not None and m["status"] == "delivered" and m,
        20,
        "a's journal says b delivered it",
    )
    last = settled["attempts"][-1]
    assert last["carrier"] == "fleet:b"
    assert last["transport"] == "sessions_send"
    assert last["outcome"] == "delivered"
    assert last["detail"] == "delivered by b via sessions_send"
    assert settled["via"] == "sessions_send"
    first = settled["attempts"][0]  # its own try first, to the dead gateway
    assert (first["transport"], first["outcome"], first["carrier"]) == ("sessions_send", "failed", None)

    at_b = record(b, mid)
    assert at_b is not None, journal(b)
    assert (at_b["kind"], at_b["status"], at_b["via"]) == ("fleet", "delivered", "sessions_send")
    assert at_b["body"] == body and at_b["sender"] == "a" and at_b["target"] == "xiaom"
    (by_b,) = at_b["attempts"]
    assert (by_b["transport"], by_b["outcome"]) == ("sessions_send", "delivered")
    assert f"run {mid} accepted in {session}" in by_b["detail"], by_b

    # the agent's session got it once, from a, under a's message id
    fleet.wait(lambda: gateway.user_messages(session, mid), 30, "the message in the gateway's session")
    (user,) = gateway.user_messages(session, mid)
    assert body in user and "from a" in user, user
    time.sleep(fleet.ttl + fleet.heartbeat)  # a second delivery would show by now
    assert len(gateway.user_messages(session, mid)) == 1
    assert record(a, mid)["status"] == "delivered"  # type: ignore[index]
    assert time.monotonic() - started < 60


# -- the fleet's events, as system events to `notify` ---------------------------------------------


def test_fleet_events_are_sent_to_notify_as_system_events(
    fleet: Fleet, gateway: Gateway, tmp_path: Path
) -> None:
    """The leader tells `notify` (a target whose sessions_send step is the session gateway) that
    it leads, who joined and who left, by `wake`: journaled as events, delivered once their turn
    ended ok. Telling takes the agent's turn (seconds); the leader's lease holds meanwhile."""
    session = "agent:main:fleet-events"
    started = time.monotonic()
    a = fleet.start(gateway_env(fleet, "a", gateway, session, fleet_extra="  notify: xiaom\n"))
    view = fleet.wait(lambda: fleet.status()["leader"] == "a" and fleet.status(), 10, "a leads")
    token = view["token"]
    elected = f"clawrelay fleet: a is the leader now (token {token})"
    joined_a = "clawrelay fleet: a joined"

    def delivered(*bodies: str) -> dict[str, dict[str, Any]] | None:
        got = events_to(a, "xiaom")
        return got if all(b in got and got[b]["status"] == "delivered" for b in bodies) else None

    got = fleet.wait(lambda: delivered(elected, joined_a), 60, "a's election and join told to xiaom")
    for text in (elected, joined_a):
        ev = got[text]
        assert ev["via"] == "wake", ev
        (attempt,) = ev["attempts"]
        assert (attempt["transport"], attempt["outcome"]) == ("wake", "delivered"), attempt
        assert attempt["detail"].startswith(f"gw: wake now into {session}; heartbeat turn "), attempt
        assert attempt["detail"].endswith(" ended ok"), attempt
        # the model had it as a system event
        prompts = [p for p in gateway.prompts_containing(ev["id"]) if text in p]
        assert prompts and "System:" in prompts[0], gateway.prompts_containing(ev["id"])
    # nothing else, nothing twice: a kept its lease (one election, one token) while it told them
    assert sum(1 for m in journal(a) if m["kind"] == "event") == 2
    assert (fleet.status()["leader"], fleet.status()["token"]) == ("a", token)

    b = fleet.start(fleet.env("b", command_target("t", tmp_path / "b.out")))
    joined_b = "clawrelay fleet: b joined"
    fleet.wait(lambda: delivered(joined_b), 60, "b's join told to xiaom")
    code, _, err = b.stop()
    assert code == 0 and "Traceback" not in err, err
    left_b = f"clawrelay fleet: b left (not seen for {fleet.ttl:g}s, or stopped)"
    got = fleet.wait(lambda: delivered(left_b), 60, "b's leaving told to xiaom")
    for text in (joined_b, left_b):
        assert got[text]["attempts"][-1]["transport"] == "wake"
        assert gateway.prompts_containing(got[text]["id"])
    assert set(got) == {elected, joined_a, joined_b, left_b}  # b, never the leader, told nobody
    assert journal(b) == []
    assert fleet.status()["leader"] == "a" and fleet.status()["token"] == token
    assert time.monotonic() - started < 60
