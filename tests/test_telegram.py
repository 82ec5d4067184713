"""The telegram rung against a local Bot API server that answers as Telegram does.

Every send here runs with dead proxies in HTTP_PROXY, HTTPS_PROXY and ALL_PROXY: the transport
must ignore them, as Telegram itself would be unreachable through them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bot_api import (
    ALICE,
    BLOCKER,
    FORUM,
    HELPER_BOT,
    HIDDEN_BOT,
    OLD_GROUP,
    OPS,
    TOKEN,
    TOKEN_ENV,
    FakeTelegram,
    telegram_routes,
)
from conftest import Env, Result, header, program, wait_for

DEAD_PROXIES = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "socks5://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
}
FAILING = f"      - command: {{argv: {json.dumps(program('record.py', '/dev/null', 1))}}}\n"
HEAD = re.compile(r"^\[clawrelay via Telegram\] from tester to human · id (\S+)(?: · part (\d+)/(\d+))?$")

Server = Callable[..., FakeTelegram]


@pytest.fixture
def bot_api(env: Env) -> Iterator[Server]:
    started: list[FakeTelegram] = []

    def start(faults: list[dict[str, Any]] | None = None) -> FakeTelegram:
        server = FakeTelegram(env.tmp / f"bot-api-{len(started)}", faults)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def setup(
    env: Env, server: FakeTelegram, step: str, *, before: str = FAILING, proxy: str | None = None
) -> None:
    env.routes(
        header(env.workspace) + telegram_routes(server.base_url, f"{before}      - telegram: {step}\n", proxy)
    )


def send(env: Env, body: str = "the backup on the VPS failed twice", *args: str, **extra: str) -> Result:
    return env.run("send", "human", body, "--json", *args, **{TOKEN_ENV: TOKEN, **DEAD_PROXIES, **extra})


def telegram_attempts(r: Result) -> list[tuple[str, str | None, bool]]:
    doc = r.json()
    assert isinstance(doc, dict)
    return [
        (a["outcome"], a["reason"], a["retryable"]) for a in doc["attempts"] if a["transport"] == "telegram"
    ]


def split_text(text: str) -> tuple[re.Match[str], str]:
    first, _, rest = text.partition("\n")
    m = HEAD.match(first)
    assert m, first
    return m, rest


# -- it arrives -------------------------------------------------------------------------------


def test_message_arrives_with_who_for_whom_why_and_id(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}}}")
    r = send(env, "disk full on the VPS\nsecond line")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["status"] == "delivered" and doc["via"] == "telegram"
    assert telegram_attempts(r) == [("delivered", None, False)]
    (msg,) = server.messages()
    assert msg["chat_id"] == ALICE and msg["parse_mode"] is None
    m, rest = split_text(msg["text"])
    assert m.group(1) == doc["id"] and m.group(2) is None
    assert rest == "Why Telegram: command failed (exit_status).\n\ndisk full on the VPS\nsecond line"
    assert (
        f"Telegram message {msg['message_id']} in chat {ALICE} (Alice, private)"
        in doc["attempts"][-1]["detail"]
    )
    assert all(req["path_ok"] for req in server.requests())  # the token went where the Bot API wants it
    log = env.run("log", "--json").json()
    assert [(e["id"], e["status"], e["via"]) for e in log] == [(doc["id"], "delivered", "telegram")]


def test_first_step_says_so_and_a_forum_topic_gets_it(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {FORUM}, thread_id: 7}}", before="")
    r = send(env)
    assert r.code == 0, r.err
    (msg,) = server.messages()
    assert msg["chat_id"] == FORUM and msg["thread_id"] == "7"
    assert split_text(msg["text"])[1].startswith("Why Telegram: Telegram is the first step of the route.\n")


def test_long_message_arrives_in_numbered_parts_in_order(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}}}")
    # 130 lines with astral-plane emoji (2 UTF-16 units each): about 10,000 units, so 3 parts
    body = "\n".join(f"line {i:03} " + "x" * 70 + " 😀" for i in range(130))
    r = send(env, body)
    assert r.code == 0, r.err
    msgs = server.messages()
    assert len(msgs) == 3
    heads = [split_text(m["text"])[0] for m in msgs]
    assert [(h.group(2), h.group(3)) for h in heads] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert {h.group(1) for h in heads} == {r.json()["id"]}
    chunks = [split_text(m["text"])[1] for m in msgs]
    assert chunks[0].startswith("Why Telegram: ")
    chunks[0] = chunks[0].split("\n\n", 1)[1]
    assert "".join(chunks) == body  # in order, nothing lost or repeated
    assert all(c.endswith("\n") for c in chunks[:-1])  # cut at line ends
    ids = [m["message_id"] for m in msgs]
    assert ids == sorted(ids)
    assert f"3 parts, Telegram messages {', '.join(map(str, ids))}" in r.json()["attempts"][-1]["detail"]


def test_markdownv2_is_escaped_so_the_text_shows_as_written(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}, parse_mode: markdownv2}}")
    body = r"v1.2-rc!  *not bold* _nor italic_ [link](x) `code` ~x~ |spoiler| #1 +2 =3 {a} > q \ end."
    r = send(env, body)
    assert r.code == 0, r.err  # the server refuses any reserved character left unescaped
    (msg,) = server.messages()
    assert msg["parse_mode"] == "MarkdownV2" and msg["raw"] != msg["text"]
    m, rest = split_text(msg["text"])
    assert m.group(1) == r.json()["id"]
    assert rest.endswith("\n\n" + body)


def test_dead_proxies_in_the_environment_change_nothing(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}}}")
    with_dead = send(env, "one")
    without = env.run("send", "human", "two", "--json", **{TOKEN_ENV: TOKEN})
    assert (with_dead.code, without.code) == (0, 0), with_dead.err + without.err
    assert [split_text(m["text"])[1].rsplit("\n", 1)[1] for m in server.messages()] == ["one", "two"]


def test_routes_proxy_is_used_with_its_password_from_the_environment(env: Env, bot_api: Server) -> None:
    server = bot_api()
    root = env.tmp / "proxy"
    root.mkdir()
    proxy = subprocess.Popen(
        program("http_proxy.py", root, "relay:s3cret-proxy-pw"), stdin=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: (root / "port").exists(), 20)
        port = int((root / "port").read_text())
        setup(env, server, f"{{chat_id: {ALICE}}}", proxy=f"http://relay:${{TEST_PROXY_PW}}@127.0.0.1:{port}")
        r = send(env, TEST_PROXY_PW="s3cret-proxy-pw")
        assert r.code == 0, r.err
        lines = (root / "requests.log").read_text().splitlines()
        assert [line.split()[0] for line in lines] == ["POST"] * 3
        assert [line.rsplit("/", 1)[1] for line in lines] == ["getMe", "getChat", "sendMessage"]
        wrong = send(env, TEST_PROXY_PW="wrong")
        assert wrong.code == 1
        assert telegram_attempts(wrong) == [("failed", "proxy_auth", False)]
        for out in (r.out, r.err, wrong.out, wrong.err, env.run("log", "--json").out):
            assert "s3cret-proxy-pw" not in out
    finally:
        proxy.terminate()
        proxy.wait(10)


# -- what each error means ------------------------------------------------------------------------


def test_flood_control_is_waited_out_within_the_attempt(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "status": 429, "retry_after": 2}])
    setup(env, server, f"{{chat_id: {ALICE}, timeout: 8s}}")
    r = send(env)
    assert r.code == 0, r.err
    assert telegram_attempts(r) == [("delivered", None, False)]
    assert "waited 2s for Telegram's flood control" in r.json()["attempts"][-1]["detail"]
    first, second = server.requests("sendMessage")
    assert second["t"] - first["t"] >= 2.0
    assert len(server.messages()) == 1


def test_flood_control_longer_than_the_attempt_is_left_to_the_router(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "status": 429, "retry_after": 3}])
    setup(env, server, f"{{chat_id: {ALICE}, timeout: 2s, retries: 1}}")
    r = send(env)
    assert r.code == 0, r.err
    assert telegram_attempts(r) == [("failed", "rate_limited", True), ("delivered", None, False)]
    first, second = server.requests("sendMessage")
    assert second["t"] - first["t"] >= 3.0  # the router waited as told


def test_flood_control_past_the_deadline_leaves_the_message_queued(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "status": 429, "retry_after": 60}])
    setup(env, server, f"{{chat_id: {ALICE}, timeout: 2s, retries: 3}}")
    r = send(env, "x", "--deadline", "4s")
    assert r.code == 1
    assert telegram_attempts(r) == [("failed", "rate_limited", True)]
    assert r.json()["queued"] is True and server.messages() == []


@pytest.mark.parametrize(
    ("chat", "reason", "asks_send"),
    [
        (HELPER_BOT, "bot_chat", False),  # getChat shows a bot: refused before anything is sent
        (
            HIDDEN_BOT,
            "bot_chat",
            True,
        ),  # getChat cannot see it; sendMessage says 403 "bot can't send messages to bots"
        (BLOCKER, "blocked", True),  # 403 "bot was blocked by the user"
        (999, "chat_not_found", True),  # 400 "chat not found"
    ],
)
def test_chat_errors_are_permanent_and_never_retried(
    env: Env, bot_api: Server, chat: int, reason: str, asks_send: bool
) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {chat}, retries: 3}}")
    r = send(env)
    assert r.code == 1
    assert telegram_attempts(r) == [("failed", reason, False)]
    assert len(server.requests("sendMessage")) == int(asks_send)
    assert server.messages() == []
    assert str(chat) in r.json()["attempts"][-1]["detail"]


def test_a_topic_that_does_not_exist_is_permanent(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {FORUM}, thread_id: 9, retries: 2}}")
    r = send(env)
    assert telegram_attempts(r) == [("failed", "thread_not_found", False)]


def test_a_too_long_message_from_the_server_is_permanent(env: Env, bot_api: Server) -> None:
    server = bot_api(
        [{"method": "sendMessage", "status": 400, "description": "Bad Request: message is too long"}]
    )
    setup(env, server, f"{{chat_id: {ALICE}, retries: 2}}")
    r = send(env)
    assert telegram_attempts(r) == [("failed", "too_long", False)]


def test_a_rejected_token_is_auth_and_never_retried(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}, retries: 3}}")
    wrong = "123456:AAH-not-the-right-token-at-all9"
    r = env.run("send", "human", "x", "--json", **{TOKEN_ENV: wrong, **DEAD_PROXIES})
    assert r.code == 1
    assert telegram_attempts(r) == [("failed", "auth", False)]
    assert [q["method"] for q in server.requests()] == ["getMe"]
    assert wrong not in r.out + r.err


def test_a_server_error_is_retried(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "status": 502}])
    setup(env, server, f"{{chat_id: {ALICE}, retries: 1}}")
    r = send(env)
    assert r.code == 0, r.err
    assert telegram_attempts(r) == [("failed", "server_error", True), ("delivered", None, False)]
    assert len(server.messages()) == 1


def test_a_slow_answer_is_ambiguous_and_not_sent_again(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "delay": 5}])
    setup(env, server, f"{{chat_id: {ALICE}, timeout: 2s, retries: 2}}")
    r = send(env)
    assert r.code == 4, r.err
    assert telegram_attempts(r) == [("ambiguous", "timeout", False)]
    assert r.json()["status"] == "ambiguous"
    wait_for(lambda: len(server.messages()) == 1, 10)  # it did arrive: the record said it may have
    assert len(server.requests("sendMessage")) == 1


def test_a_dropped_connection_after_sending_is_ambiguous(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "drop": "after"}])
    setup(env, server, f"{{chat_id: {ALICE}, retries: 2}}")
    r = send(env)
    assert r.code == 4
    assert telegram_attempts(r) == [("ambiguous", "connection_lost", False)]
    assert len(server.messages()) == 1 and len(server.requests("sendMessage")) == 1


def test_a_failed_part_is_retried_without_repeating_the_parts_that_arrived(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "delay": 0}, {"method": "sendMessage", "status": 502}])
    setup(env, server, f"{{chat_id: {ALICE}, retries: 1}}")
    body = "\n".join("y" * 99 for _ in range(60))  # 6,000 characters: 2 parts
    r = send(env, body)
    assert r.code == 0, r.err
    assert telegram_attempts(r) == [("ambiguous", "partial", True), ("delivered", None, False)]
    assert "part 1 of 2 arrived; part 2: server_error" in r.json()["attempts"][1]["detail"]
    heads = [split_text(m["text"])[0].group(2) for m in server.messages()]
    assert heads == ["1", "2"]  # part 1 once, then part 2
    chunks = [split_text(m["text"])[1] for m in server.messages()]
    assert chunks[0].split("\n\n", 1)[1] + chunks[1] == body  # the second try cut where the first did


def test_a_group_that_became_a_supergroup_still_gets_it(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {OLD_GROUP}}}")
    r = send(env)
    assert r.code == 0, r.err
    assert [m["chat_id"] for m in server.messages()] == [OPS]
    assert f"is now chat {OPS}: set chat_id to it in routes.yaml" in r.json()["attempts"][-1]["detail"]


# -- loops and secrets --------------------------------------------------------------------------


def test_a_message_that_came_through_telegram_is_not_sent_there_again(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}}}")
    first = send(env, "ping")
    assert first.code == 0
    forwarded = server.messages()[0]["text"]  # an agent that read the chat relays what it saw
    r = send(env, f"please pass this on:\n{forwarded}")
    assert r.code == 1
    assert telegram_attempts(r) == [("failed", "loop", False)]
    assert len(server.requests("sendMessage")) == 1  # only the first


def test_the_token_never_appears_in_output_logs_or_the_journal(env: Env, bot_api: Server) -> None:
    server = bot_api([{"method": "sendMessage", "status": 502}])
    setup(env, server, f"{{chat_id: {ALICE}, retries: 1}}")
    runs = [
        send(env, CLAWRELAY_LOG="debug"),
        send(env, CLAWRELAY_LOG="debug", **{TOKEN_ENV: TOKEN[:-1] + "X"}),
    ]
    assert runs[0].code == 0 and runs[1].code == 1
    assert "/bot***/sendMessage" in runs[0].err  # the debug log shows requests, token masked
    outputs = [*(x for r in runs for x in (r.out, r.err))]
    outputs += [env.run(*args).out for args in (("log", "--json"), ("outbox", "--json"), ("routes", "show"))]
    for text in outputs:
        assert TOKEN not in text and TOKEN[:-1] + "X" not in text
    for path in env.home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes() and TOKEN[:-1].encode() not in path.read_bytes(), (
                path
            )
    with sqlite3.connect(next(env.home.rglob("*.db"))) as db:
        dump = "\n".join(db.iterdump())
    assert TOKEN[:20] not in dump


def test_a_telegram_step_needs_the_bot(env: Env) -> None:
    env.routes(header(env.workspace) + "targets:\n  human:\n    chain:\n      - telegram: {chat_id: 1}\n")
    r = env.run("routes", "check")
    assert r.code == 2
    assert re.search(r"routes\.yaml:\d+: targets\.human\.chain\[0\]\.telegram: needs the bot", r.err), r.err


def test_routes_show_masks_the_token_and_check_warns_when_it_is_unset(env: Env, bot_api: Server) -> None:
    server = bot_api()
    setup(env, server, f"{{chat_id: {ALICE}}}")
    check = env.run("routes", "check")
    assert (
        check.code == 0 and f"telegram.token: environment variable {TOKEN_ENV} is not set here" in check.err
    )
    r = env.run("routes", "show", "--json", **{TOKEN_ENV: TOKEN})
    assert r.code == 0, r.err
    doc = r.json()
    assert isinstance(doc, dict)
    assert doc["routes"]["telegram"]["token"] == f"${{{TOKEN_ENV}}} (set)"
    assert TOKEN not in r.out
