"""Against a real OpenClaw gateway on loopback: call, nodes, and sends through sessions_send."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from conftest import Env, header, wait_for
from peer import Gateway, free_port


def gateway_routes(env: Env, gw: Gateway, steps: str, *, target_extra: str = "", session: str = "") -> None:
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    gateways:
      gw: {{url: "{gw.url}", token: "${{TEST_GW_TOKEN}}"}}
      down: {{url: "ws://127.0.0.1:{free_port()}", token: "${{TEST_GW_TOKEN}}"}}
    targets:
      xiaom:
        host: here
        {f'session: "{session}"' if session else ""}
{target_extra}        chain:
{steps}
    """)
    )


def test_call_health_status_and_node_list(env: Env, gateway: Gateway) -> None:
    for method in ("health", "status", "node.list"):
        r = env.run("call", gateway.url, method, "--json", OPENCLAW_GATEWAY_TOKEN=gateway.token)
        assert r.code == 0, r.out + r.err
        doc = r.json()
        assert doc["ok"] is True and isinstance(doc["payload"], dict)
    assert (
        env.run("call", gateway.url, "health", "--json", OPENCLAW_GATEWAY_TOKEN=gateway.token).json()[
            "payload"
        ]["ok"]
        is True
    )
    # by routes name, the token from the routes' reference
    gateway_routes(env, gateway, "          - memory_file: {}")
    r = env.run("call", "gw", "node.list", "--params", "{}", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0 and "nodes" in json.loads(r.out)["payload"]
    unknown = env.run("call", "gw", "no.such.method", TEST_GW_TOKEN=gateway.token)
    assert unknown.code == 1 and json.loads(unknown.out)["error"]["reason"] == "unknown_method"


def test_wrong_token_is_auth_with_a_clear_message(env: Env, gateway: Gateway) -> None:
    wrong = "wrong-token-9f8e7d"
    r = env.run("call", gateway.url, "health", "--json", OPENCLAW_GATEWAY_TOKEN=wrong)
    assert r.code == 1
    error = r.json()["error"]
    assert error["reason"] == "auth" and "token mismatch" in error["message"]
    assert "OPENCLAW_GATEWAY_TOKEN" in error["message"] and wrong not in r.out + r.err

    gateway_routes(
        env, gateway, "          - sessions_send: {gateway: gw, retries: 3}\n          - memory_file: {}"
    )
    sent = env.run("send", "xiaom", "with a bad token", "--json", TEST_GW_TOKEN=wrong)
    doc = sent.json()
    assert [(a["transport"], a["outcome"], a["reason"]) for a in doc["attempts"]] == [
        ("sessions_send", "failed", "auth"),
        ("memory_file", "delivered", None),
    ]  # auth is never retried
    assert wrong not in sent.out + sent.err and wrong not in env.run("log", "--json").out


def test_send_over_sessions_send_lands_in_the_target_session(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw}\n          - memory_file: {}",
        session="agent:main:relay-accept",
    )
    r = env.run("send", "xiaom", "backup finished on the VPS", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["via"] == "sessions_send" and len(doc["attempts"]) == 1
    assert f"run {doc['id']} accepted in agent:main:relay-accept" in doc["attempts"][0]["detail"]
    assert not (env.workspace / "memory").exists()

    wait_for(lambda: gateway.user_messages("agent:main:relay-accept", doc["id"]))
    (user,) = gateway.user_messages("agent:main:relay-accept", doc["id"])
    assert "from tester" in user and "backup finished on the VPS" in user  # who sent it, and its id


def test_wait_reply_records_the_agents_answer(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw, wait_reply: true, timeout: 90s}",
        session="agent:main:relay-reply",
    )
    r = env.run("send", "xiaom", "what is two plus two?", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["reply"].startswith("ACK: ") and "what is two plus two?" in doc["reply"]
    assert doc["id"] in doc["reply"]  # the model saw the envelope's headline
    (logged,) = env.run("log", "--json").json()
    assert logged["reply"] == doc["reply"]
    human = env.run("log")
    assert f"reply: {doc['reply']}" in human.out


def test_a_late_reply_is_ambiguous_and_a_retry_is_deduplicated(env: Env, gateway: Gateway) -> None:
    session = "agent:main:relay-late"
    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw, wait_reply: true, timeout: 2s}",
        target_extra="        on_ambiguous: stop\n",
        session=session,
    )
    r = env.run("send", "xiaom", "slow one [[delay=6]]", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 4, r.err
    doc = r.json()
    (attempt,) = doc["attempts"]
    assert (attempt["outcome"], attempt["reason"]) == ("ambiguous", "timeout")

    # a retry reuses the message id as idempotency key: the gateway does not run it twice
    again = env.run("outbox", "retry", doc["id"], "--json", TEST_GW_TOKEN=gateway.token)
    assert again.code == 0, again.err
    assert again.json()["retried"][0]["status"] == "delivered"
    time.sleep(7)
    assert len(gateway.user_messages(session, doc["id"])) == 1


def test_gateway_down_falls_to_the_next_transport(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env, gateway, "          - sessions_send: {gateway: down, retries: 1}\n          - memory_file: {}"
    )
    r = env.run("send", "xiaom", "anyone?", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0, r.err
    doc = r.json()
    assert [(a["transport"], a["reason"], a["retryable"]) for a in doc["attempts"]] == [
        ("sessions_send", "connection_refused", True),
        ("sessions_send", "connection_refused", True),
        ("memory_file", None, False),
    ]
    assert doc["id"] in env.note()
    assert doc["attempts"][-1]["detail"].endswith("; no wake (connection_refused)")  # delivered all the same


def test_a_memory_entry_is_followed_by_a_wake_that_names_it(env: Env, gateway: Gateway) -> None:
    session = "agent:main:relay-note"
    gateway_routes(
        env, gateway, "          - sessions_send: {gateway: gw}\n          - memory_file: {}", session=session
    )
    r = env.run(
        "send",
        "xiaom",
        "read me from your notes",
        "--via",
        "memory_file",
        "--json",
        TEST_GW_TOKEN=gateway.token,
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["via"] == "memory_file" and doc["id"] in env.note()
    assert (
        f"; then gw: wake now into {session}, " in doc["attempts"][0]["detail"]
    )  # and what its turn came to
    # the agent got a turn at once, told where the entry is; the message itself went to the file only
    wait_for(lambda: any(doc["id"] in m and "memory/" in m for m in gateway.history(session)), 60)
    assert not gateway.user_messages(session, doc["id"])

    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw}\n          - memory_file: {wake: false}",
        session=session,
    )
    r = env.run(
        "send", "xiaom", "no wake for this one", "--via", "memory_file", "--json", TEST_GW_TOKEN=gateway.token
    )
    assert r.code == 0 and "wake" not in r.json()["attempts"][0]["detail"]


def test_nodes_lists_a_paired_node_host(env: Env, gateway: Gateway, node: str) -> None:
    node_id = node
    gateway_routes(env, gateway, "          - memory_file: {}")
    r = env.run("nodes", "gw", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0, r.err
    (listed,) = [n for n in r.json()["nodes"] if n["id"] == node_id]
    assert listed["name"] == "xiaom" and listed["connected"] is True
    assert listed["approval"] == "approved" and listed["system_run"] is True
    human = env.run("nodes", TEST_GW_TOKEN=gateway.token)  # every configured gateway; one is down
    assert human.code == 1 and "xiaom" in human.out and "connection refused" in human.err


@pytest.mark.slow
def test_gateway_restarted_mid_send_is_retried_not_lost(env: Env, gateway: Gateway) -> None:
    """The gateway goes away while a send is under way; the send retries until it is back."""
    session = "agent:main:relay-restart"
    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw, retries: 10, timeout: 20s}",
        target_extra="        deadline: 240s\n",
        session=session,
    )
    gateway.stop_gateway()
    try:
        proc = env.spawn("send", "xiaom", "sent across a restart", "--json", TEST_GW_TOKEN=gateway.token)

        def refused_once() -> bool:
            log = env.run("log", "--json").json()
            return bool(log) and any(a["reason"] == "connection_refused" for a in log[0]["attempts"])

        wait_for(refused_once, 60)
    finally:
        gateway.start()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    reasons = [a["reason"] for a in doc["attempts"]]
    assert doc["via"] == "sessions_send" and reasons[-1] is None
    assert set(reasons[:-1]) <= {
        "connection_refused",
        "unavailable",
        "handshake_timeout",
        "gateway_restarting",
    }
    wait_for(lambda: gateway.user_messages(session, doc["id"]), 60)
    assert len(gateway.user_messages(session, doc["id"])) == 1


def test_call_output_never_holds_the_token_even_when_the_payload_does(env: Env, gateway: Gateway) -> None:
    """Someone pasted the token into a session; reading that history back must not print it."""
    session = "agent:main:relay-pasted"
    pasted = gateway.call(
        "agent",
        {
            "message": f"my token is {gateway.token}, keep it",
            "sessionKey": session,
            "deliver": False,
            "idempotencyKey": f"paste-{time.time()}",
        },
    )
    assert pasted["ok"], pasted
    r = env.run(
        "call",
        gateway.url,
        "chat.history",
        "--params",
        json.dumps({"sessionKey": session}),
        "--json",
        OPENCLAW_GATEWAY_TOKEN=gateway.token,
    )
    assert r.code == 0, r.out + r.err
    assert "my token is ***, keep it" in r.out and gateway.token not in r.out
