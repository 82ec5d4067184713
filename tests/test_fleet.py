"""The fleet, for real: three targets on two real gateways (the session's and a second one) and a
third whose gateway is down until a test starts it. Group sends, status, events, and the outbox
drained by `outbox flush --watch` when that gateway comes up, by two flushers at once."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator

import pytest
from conftest import Env, Result, wait_for
from peer import TOKEN, Gateway, free_port, running_gateway

TOKEN_ENV = "TEST_GW_TOKEN"

# every test twice: in its own process, and inside a relay (`clawrelay serve`)
pytestmark = pytest.mark.usefixtures("relay_mode")


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A second real gateway (its own port, state and model): another OpenClaw instance."""
    with running_gateway(tmp_path_factory.mktemp("gateway-b")) as gw:
        yield gw


@pytest.fixture(scope="module")
def third(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The third instance: a port nothing listens on, until a test starts its gateway there."""
    with running_gateway(tmp_path_factory.mktemp("gateway-c"), port=free_port(), start=False) as gw:
        yield gw


def fleet_routes(
    env: Env, a: Gateway, b: Gateway, c: Gateway, *, extra_targets: str = "", top: str = ""
) -> None:
    env.routes(f"""
    version: 1
    self: tester
    {top}
    gateways:
      gw-a: {{url: "{a.url}", token: "${{{TOKEN_ENV}}}"}}
      gw-b: {{url: "{b.url}", token: "${{{TOKEN_ENV}}}"}}
      gw-c: {{url: "{c.url}", token: "${{{TOKEN_ENV}}}"}}
    hosts:
      xiaom: {{node: {{gateway: gw-a, id: xiaom}}, openclaw: "{a.bin_dir / "openclaw"}"}}
      ghost: {{node: {{gateway: gw-a, id: no-such-node}}}}
    targets:
      a: {{chain: [sessions_send: {{gateway: gw-a}}]}}
      b: {{chain: [sessions_send: {{gateway: gw-b}}]}}
      c: {{session: "agent:main:main", chain: [sessions_send: {{gateway: gw-c, timeout: 5s}}]}}
{textwrap.indent(textwrap.dedent(extra_targets), "      ")}
    groups:
      fleet: [a, b, c]
    """)


def run(env: Env, *args: str, timeout: float = 120) -> Result:
    return env.run(*args, timeout=timeout, **{TOKEN_ENV: TOKEN})


def by_target(docs: list[dict]) -> dict[str, dict]:
    return {d["target"]: d for d in docs}


def test_a_group_send_gives_each_target_its_own_id_and_exit_4_when_one_is_down(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway
) -> None:
    fleet_routes(env, gateway, second, third)
    r = run(env, "send", "@fleet", "rolling restart in 5 min", "--json")
    assert r.code == 4, r.err
    docs = by_target(r.json())
    assert {t: d["status"] for t, d in docs.items()} == {"a": "delivered", "b": "delivered", "c": "failed"}
    assert len({d["id"] for d in docs.values()}) == 3
    assert docs["c"]["queued"] and docs["c"]["attempts"][-1]["reason"] == "connection_refused"
    # each instance got its own message, once, and not the other's
    wait_for(lambda: gateway.user_messages("agent:main:main", docs["a"]["id"]), 60)
    wait_for(lambda: second.user_messages("agent:main:main", docs["b"]["id"]), 60)
    assert len(gateway.user_messages("agent:main:main", docs["a"]["id"])) == 1
    assert len(second.user_messages("agent:main:main", docs["b"]["id"])) == 1
    assert not gateway.user_messages("agent:main:main", docs["b"]["id"])

    log = run(env, "log", "--json")
    batches = {json.dumps(rec["batch"]) for rec in log.json()}
    assert len(batches) == 1 and json.loads(batches.pop())["to"] == "@fleet"
    human = run(env, "log", "--brief").out
    assert "message to @fleet (batch " in human and "2 delivered, 1 queued" in human

    r = run(env, "send", "--to", "a,b", "second round", "--json")
    assert r.code == 0 and [d["status"] for d in r.json()] == ["delivered", "delivered"]


def test_status_matches_what_is_up_and_what_the_journal_says(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway, node: str
) -> None:
    fleet_routes(env, gateway, second, third)
    assert run(env, "send", "a", "first", "--json").code == 0
    assert run(env, "send", "c", "for the one that is down").code == 1
    before = int(time.time() * 1000)

    r = run(env, "status", "--json", "--timeout", "10s")
    assert r.code == 1, r.err  # c has no way that works now
    doc = r.json()
    targets = by_target(doc["targets"])
    assert targets["a"]["reachable"] == ["sessions_send"] and targets["b"]["reachable"] == ["sessions_send"]
    assert targets["c"]["reachable"] == []
    assert targets["c"]["steps"][0]["reason"] == "connection_refused"
    assert targets["a"]["last_delivered"]["via"] == "sessions_send"
    assert before - 60_000 < targets["a"]["last_delivered"]["at_ms"] <= before
    assert targets["b"]["last_delivered"] is None
    assert targets["c"]["outbox"] == {"queued": 1, "ambiguous": 0}
    assert targets["a"]["outbox"] == {"queued": 0, "ambiguous": 0}
    hosts = {h["host"]: {c["check"]: c for c in h["checks"]} for h in doc["hosts"]}
    assert hosts["xiaom"]["gateway"]["ok"] and hosts["xiaom"]["node"]["ok"]
    assert hosts["ghost"]["gateway"]["ok"] and not hosts["ghost"]["node"]["ok"]
    assert hosts["ghost"]["node"]["reason"] == "not_found"
    assert run(env, "status", "a", "--json").json()["hosts"] == []  # a lives on no host
    relay = doc["relay"]
    if relay["running"]:  # the send rode the relay: its connection to gw-a stays open there
        assert relay["gateways"]["gw-a"] is True and relay["gateways"]["gw-c"] is False
        assert relay["pid"] > 0 and relay["uptime_s"] >= 0
    else:
        assert relay == {"running": False}

    human = run(env, "status", "--timeout", "5s").out
    assert "c  now: nothing reachable" in human and "outbox: 1 queued" in human


def test_an_event_wakes_the_target_session_over_its_gateway(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway
) -> None:
    fleet_routes(env, gateway, second, third)
    r = run(env, "event", "b", "backup finished on the VPS", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    detail = doc["attempts"][0]["detail"]
    assert doc["via"] == "wake" and detail.startswith("gw-b: wake now into agent:main:main; heartbeat turn ")
    assert detail.endswith(" ended ok")  # delivered once the turn that took it ended well
    # the heartbeat turn that saw the event is in the target session's history
    wait_for(
        lambda: any(
            doc["id"] in m and "backup finished on the VPS" in m
            for m in second.history()
            if m.startswith("assistant:")
        ),
        60,
    )
    assert not any(doc["id"] in m for m in gateway.history())
    log = run(env, "log", "--brief").out
    assert "event `backup finished on the VPS`" in log and "delivered via wake" in log


def test_an_event_goes_over_the_node_when_the_targets_gateway_is_down(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway, node: str
) -> None:
    fleet_routes(
        env,
        gateway,
        second,
        third,
        extra_targets="""
        x: {host: xiaom, chain: [sessions_send: {gateway: gw-c}]}
        y: {host: xiaom, chain: [sessions_send: {gateway: gw-a}]}
    """,
    )
    r = run(env, "event", "x", "disk almost full", "--mode", "now", "--json", "--deadline", "100s")
    # the host's gateway queued it, and its turn cannot be watched from here: not "delivered"
    assert r.code == 4, r.err
    doc = r.json()
    last = doc["attempts"][-1]
    assert (last["transport"], last["outcome"], last["reason"]) == (
        "system_event",
        "ambiguous",
        "unconfirmed",
    )
    assert doc["attempts"][0]["reason"] == "connection_refused" and last["carrier"] == "node"
    assert "no connection to gw-c from here (connection_refused)" in last["detail"]
    # it did reach the model (the prompt log: a reply quoting it may be cut short by other events)
    wait_for(lambda: any("disk almost full" in p for p in gateway.prompts_containing(doc["id"])), 60)

    # where the target's gateway answers, the turn is watched there and the event confirmed
    r = run(env, "event", "y", "disk cleaned up", "--via", "system_event", "--json", "--deadline", "100s")
    assert r.code == 0, r.out + r.err
    (attempt,) = r.json()["attempts"]
    assert (attempt["transport"], attempt["carrier"]) == ("system_event", "node")
    assert "watched on gw-a; heartbeat turn " in attempt["detail"] and attempt["detail"].endswith(" ended ok")
    assert gateway.prompts_containing(r.json()["id"])


def test_events_are_never_queued_and_bad_input_is_refused(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway
) -> None:
    fleet_routes(env, gateway, second, third, extra_targets='m: {chain: [command: {argv: ["true"]}]}')
    r = run(env, "event", "c", "nobody home", "--json")
    assert r.code == 1 and r.json()["status"] == "failed" and not r.json()["queued"]
    assert run(env, "outbox", "list", "--json").json() == []
    r = run(env, "event", "m", "hi")
    assert r.code == 2 and "no way to take an event" in r.err
    r = run(env, "event", "a", "hi", "--mode", "later")
    assert r.code == 2 and "--mode" in r.err
    assert run(env, "log", "--json").json()[-1]["kind"] == "event"


def test_flush_watch_delivers_to_a_gateway_that_comes_back_exactly_once_with_two_flushers(
    env: Env, gateway: Gateway, second: Gateway, third: Gateway
) -> None:
    # a backoff far longer than this test: only "drained at once when it comes back" can deliver it
    fleet_routes(env, gateway, second, third, top="outbox: {backoff: 10m}")
    r = run(env, "send", "c", "waiting for you to come back", "--json")
    assert r.code == 1
    message = r.json()["id"]
    (waiting,) = run(env, "outbox", "list", "--json").json()
    assert waiting["next_attempt_ms"] > time.time() * 1000 + 5 * 60_000
    extra = {TOKEN_ENV: TOKEN}
    flushers = [
        env.spawn("outbox", "flush", "--watch", "--interval", "1s", "--json", **extra) for _ in range(2)
    ]
    try:
        time.sleep(3)  # both have looked at c and found it down
        assert all(f.poll() is None for f in flushers)
        third.start()
        wait_for(lambda: run(env, "log", "--json").json()[-1]["status"] == "delivered", 120)
        # it arrived in the instance that came back, once
        wait_for(lambda: third.user_messages("agent:main:main", message), 60)
        time.sleep(2)  # a second copy, had one been sent, would be there by now
        assert len(third.user_messages("agent:main:main", message)) == 1
    finally:
        for f in flushers:
            f.send_signal(signal.SIGTERM)
        outs = [f.communicate(timeout=60) for f in flushers]
        third.stop_gateway()
    assert [f.returncode for f in flushers] == [0, 0], outs
    rec = run(env, "log", "--json").json()[-1]
    assert rec["id"] == message and rec["via"] == "sessions_send"
    assert [a["outcome"] for a in rec["attempts"]].count("delivered") == 1
    assert run(env, "outbox", "list", "--json").json() == []
    # what the flushers reported: one delivery of it between them
    passes = [json.loads(line) for out, _ in outs for line in out.splitlines() if line.startswith("{")]
    assert [d["id"] for p in passes for d in p["retried"] if d["status"] == "delivered"] == [message]


def test_the_documented_openclaw_cron_job_drains_the_outbox(env: Env, gateway: Gateway) -> None:
    """docs/fleet.md's `openclaw cron add` recipe, run by the real gateway's scheduler: a pass that
    leaves a message queued is a run that went well (else OpenClaw backs the job off, then
    disables it), and a pass once the target is up delivers it."""
    from conftest import CLAWRELAY, program

    flag, out = env.tmp / "up", env.tmp / "out.txt"
    routes = env.routes(f"""
    version: 1
    self: tester
    outbox: {{backoff: 1s, max_backoff: 1s}}
    targets:
      s: {{chain: [command: {{argv: {json.dumps(program("when_file.py", flag, out))}, retries: 0}}]}}
    """)
    assert run(env, "send", "s", "drained by openclaw cron").code == 1

    oc_env = {**gateway.env(), "OPENCLAW_GATEWAY_TOKEN": gateway.token}

    def openclaw(*args: str) -> dict:
        p = subprocess.run(
            [str(gateway.bin_dir / "openclaw"), *args, "--json"],
            env=oc_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert p.stdout.strip(), p.stderr
        return json.loads(p.stdout)

    job = openclaw(
        "cron",
        "add",
        "--name",
        "clawrelay-flush",
        "--every",
        "5m",
        "--no-deliver",
        "--command-argv",
        json.dumps([CLAWRELAY, "outbox", "flush", "--exit-zero", "--config", str(routes)]),
        "--command-env",
        f"CLAWRELAY_HOME={env.home}",
        "--command-env",
        "CLAWRELAY_SERVICE=cron",
        "--timeout-seconds",
        "240",
    )
    try:
        ran = openclaw("cron", "run", job["id"], "--wait")  # the target is down: still a good run
        assert (ran["status"], ran["completionStatus"]) == ("ok", "succeeded"), ran
        assert "not delivered to s: kept in the outbox" in json.dumps(ran) and not out.exists(), ran
        flag.touch()
        time.sleep(1.5)  # past the message's backoff
        ran = openclaw("cron", "run", job["id"], "--wait")
        assert ran["completionStatus"] == "succeeded", ran
    finally:
        openclaw("cron", "remove", job["id"])
    assert out.read_text() == "drained by openclaw cron\n"
    (record,) = run(env, "log", "--json").json()
    assert record["status"] == "delivered" and record["runs"] == 3
