"""`send --wait-reply [DURATION]`: the agent's answer to one message, printed, in --json and in the log.

The message is journaled delivered when the gateway accepts it; waiting for the answer comes
after and never changes that."""

from __future__ import annotations

import pytest
from conftest import Env
from peer import Gateway
from test_gateway import gateway_routes


def test_the_reply_is_printed_returned_and_logged(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env,
        gateway,
        "          - sessions_send: {gateway: gw, timeout: 5s}\n          - memory_file: {}",
        session="agent:main:ask-reply",
    )
    r = env.run(
        "send",
        "xiaom",
        "is the backup done?",
        "--wait-reply",
        "--json",
        TEST_GW_TOKEN=gateway.token,
        timeout=120,
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["status"], doc["via"], doc["reply_status"]) == ("delivered", "sessions_send", "replied")
    assert doc["reply"].startswith("ACK: ") and "is the backup done?" in doc["reply"]
    (logged,) = env.run("log", "--json").json()
    assert logged["reply"] == doc["reply"] and logged["status"] == "delivered"

    human = env.run(
        "send", "--wait-reply", "30s", "xiaom", "and the restore?", TEST_GW_TOKEN=gateway.token, timeout=120
    )
    assert human.code == 0, human.err
    assert "delivered to xiaom via sessions_send" in human.out
    assert "\nreply: ACK: " in human.out and "and the restore?" in human.out


def test_no_reply_in_time_is_said_and_the_message_stays_delivered(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env, gateway, "          - sessions_send: {gateway: gw, timeout: 5s}", session="agent:main:ask-late"
    )
    r = env.run(
        "send",
        "xiaom",
        "slow answer [[delay=8]]",
        "--wait-reply",
        "2s",
        "--json",
        TEST_GW_TOKEN=gateway.token,
        timeout=60,
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["status"], doc["reply_status"]) == ("delivered", "no_reply") and "reply" not in doc
    assert env.run("log", "--json").json()[0]["status"] == "delivered"
    assert env.run("outbox", "list", "--json").json() == []


def test_a_way_that_carries_no_answer_says_so(env: Env, gateway: Gateway) -> None:
    gateway_routes(
        env, gateway, "          - sessions_send: {gateway: down, timeout: 2s}\n          - memory_file: {}"
    )
    r = env.run("send", "xiaom", "note only", "--wait-reply", TEST_GW_TOKEN=gateway.token, timeout=60)
    assert r.code == 0, r.err
    assert "delivered to xiaom via memory_file" in r.out
    assert "no reply: memory_file carries no answer back" in r.out


@pytest.mark.parametrize(
    "args, error",
    [
        (["send", "a,b", "x", "--wait-reply"], "--wait-reply takes one target"),
        (["send", "xiaom", "x", "--wait-reply=soon"], "--wait-reply: 'soon' is not a duration"),
    ],
)
def test_wait_reply_usage_errors(env: Env, args: list[str], error: str) -> None:
    env.routes(
        "version: 1\nself: me\ntargets:\n  xiaom: {chain: [{command: {argv: ['true']}}]}\n"
        "  a: {chain: [{command: {argv: ['true']}}]}\n  b: {chain: [{command: {argv: ['true']}}]}\n"
    )
    r = env.run(*args)
    assert r.code == 2 and error in r.err, r.err
    assert env.run("log", "--json").json() == []


def test_the_option_takes_only_a_duration_as_its_value() -> None:
    from clawrelay.cli.argv import with_optional_values as v

    assert v(["send", "--wait-reply", "xiaom", "hi"]) == ["send", "--wait-reply=3m", "xiaom", "hi"]
    assert v(["send", "xiaom", "hi", "--wait-reply"]) == ["send", "xiaom", "hi", "--wait-reply=3m"]
    assert v(["send", "xiaom", "hi", "--wait-reply", "90s", "--json"]) == [
        "send",
        "xiaom",
        "hi",
        "--wait-reply=90s",
        "--json",
    ]
    assert v(["send", "--wait-reply", "--json", "x", "y"]) == ["send", "--wait-reply=3m", "--json", "x", "y"]
    assert v(["send", "--", "x", "--wait-reply"]) == ["send", "--", "x", "--wait-reply"]
    assert v(["-c", "r.yaml", "send", "x", "y", "--wait-reply"]) == [
        "-c",
        "r.yaml",
        "send",
        "x",
        "y",
        "--wait-reply=3m",
    ]
    # another command's words are its own: a remote command line keeps its `--wait-reply`
    assert v(["exec", "host", "prog", "--wait-reply"]) == ["exec", "host", "prog", "--wait-reply"]
