"""`clawrelay doctor` against the real gateway and node host, the real sshd and the local Bot API server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from bot_api import ALICE, HELPER_BOT, TOKEN, TOKEN_ENV, FakeTelegram
from conftest import Env
from peer import free_port
from remote import GW_TOKEN_ENV


@pytest.fixture
def bot_api(env: Env) -> Iterator[FakeTelegram]:
    server = FakeTelegram(env.tmp / "bot-api")
    yield server
    server.stop()


def routes(env: Env, gateway, sshd, bot_api: FakeTelegram, *, extra_hosts: str = "", targets: str) -> None:  # type: ignore[no-untyped-def]
    cli = gateway.bin_dir / "openclaw"
    env.routes(f"""
version: 1
self: tester
gateways:
  gw: {{url: "{gateway.url}", token: "${{{GW_TOKEN_ENV}}}"}}
telegram: {{token: "${{{TOKEN_ENV}}}", base_url: "{bot_api.base_url}"}}
hosts:
  xiaom: {{node: {{gateway: gw, id: xiaom}}, workspace: "{env.workspace}", openclaw: "{cli}"}}
  box: {{ssh: {sshd.routes_entry()}, workspace: "{env.workspace}",
         openclaw: [env, "PATH={gateway.bin_dir}:/usr/bin:/bin", "{cli}"]}}
{extra_hosts}targets:
{targets}""")


def doctor(env: Env, gateway, *args: str, **extra: str) -> tuple[int, dict[str, Any], str]:  # type: ignore[no-untyped-def]
    r = env.run(
        "doctor", "--json", *args, timeout=240, **{GW_TOKEN_ENV: gateway.token, TOKEN_ENV: TOKEN, **extra}
    )
    assert r.out.startswith("{"), r.err[-3000:]
    doc = r.json()
    assert isinstance(doc, dict), r.err
    return r.code, doc, r.out + r.err


def by_step(doc: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(c["subject"], c["step"]): c for c in doc["checks"]}


def test_everything_set_up_is_ok_and_nothing_is_sent(
    env: Env, gateway, node, sshd, bot_api: FakeTelegram
) -> None:  # type: ignore[no-untyped-def]
    routes(
        env,
        gateway,
        sshd,
        bot_api,
        targets="""
  xiaom:
    aliases: [小m]
    host: xiaom
    chain:
      - sessions_send
      - nodes_run
      - agent_cli: {via: [node]}
      - memory_file: {via: [node]}
      - telegram: {chat_id: ALICE}
  box:
    host: box
    chain:
      - agent_cli: {via: [ssh]}
      - memory_file: {via: [ssh]}
      - command: {argv: ["true"]}
""".replace("ALICE", str(ALICE)),
    )
    prompts = len(gateway.prompts_containing(""))
    code, doc, out = doctor(env, gateway, HTTPS_PROXY="http://127.0.0.1:9")
    assert code == 0, out
    assert doc["ok"] is True
    checks = by_step(doc)
    assert [k for k in checks] == [
        ("config", None),
        ("proxies", None),
        *[("xiaom", i) for i in range(1, 6)],
        *[("box", i) for i in range(1, 4)],
        ("flusher", None),
    ]
    assert all(c["ok"] for c in doc["checks"]), out
    assert "token accepted, device paired" in checks["xiaom", 1]["detail"]
    assert "node xiaom on gw: connected, approved, system.run offered" in checks["xiaom", 2]["detail"]
    assert "2026." in checks["xiaom", 3]["detail"] and "2026." in checks["box", 1]["detail"]
    assert "writable" in checks["box", 2]["detail"] and "ssh" in checks["box", 2]["detail"]
    assert f"chat {ALICE} (Alice, private)" in checks["xiaom", 5]["detail"]
    assert "HTTPS_PROXY set here" in checks["proxies", None]["detail"]
    # nothing sent to any agent, no memory entry, no Telegram message
    assert len(gateway.prompts_containing("")) == prompts
    assert not (env.workspace / "memory").exists()
    assert bot_api.requests("sendMessage") == []
    human = env.run("doctor", "小m", **{GW_TOKEN_ENV: gateway.token, TOKEN_ENV: TOKEN})
    assert human.code == 0 and len(human.out.splitlines()) == 2 + 5  # config, proxies, five steps
    assert all(line.startswith("ok ") for line in human.out.splitlines())


def test_each_broken_thing_is_reported_with_its_fix(env: Env, gateway, sshd, bot_api: FakeTelegram) -> None:  # type: ignore[no-untyped-def]
    empty_known_hosts = env.tmp / "known_hosts"
    empty_known_hosts.write_text("")
    missing = env.tmp / "no-such-workspace"
    routes(
        env,
        gateway,
        sshd,
        bot_api,
        extra_hosts=f"""
  stranger: {{ssh: {sshd.routes_entry(known_hosts=str(empty_known_hosts))}}}
  gone: {{local: true, workspace: "{missing}"}}
  waiting: {{node: {{gateway: gw, id: doctor-waiting}}}}
""",
        targets="""
  a: {chain: [sessions_send]}
  b: {host: waiting, chain: [nodes_run]}
  c: {host: stranger, chain: [{agent_cli: {via: [ssh]}}]}
  d: {host: gone, chain: [memory_file]}
  e: {chain: [{telegram: {chat_id: ALICE}}]}
  f: {chain: [{telegram: {chat_id: HELPER_BOT}}]}
  g: {chain: [{command: {argv: [no-such-program-here]}}]}
""".replace("ALICE", str(ALICE)).replace("HELPER_BOT", str(HELPER_BOT)),
    )
    bad_token = "wrong-gateway-token-1234567"
    bad_bot = TOKEN[:-1] + "X"
    code, doc, out = doctor(env, gateway, **{GW_TOKEN_ENV: bad_token, TOKEN_ENV: bad_bot})
    assert code == 1 and doc["ok"] is False
    checks = by_step(doc)
    got = {k[0]: (c["ok"], c["reason"]) for k, c in checks.items() if k[1] is not None}
    assert got == {
        "a": (False, "auth"),
        "b": (False, "auth"),
        "c": (False, "host_key_unknown"),
        "d": (False, "not_found"),
        "e": (False, "auth"),
        "f": (False, "auth"),
        "g": (False, "not_found"),
    }
    assert checks["a", 1]["fix"].startswith(f"export {GW_TOKEN_ENV}=")
    assert checks["c", 1]["fix"] == f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty_known_hosts}"
    assert checks["d", 1]["fix"] == f"on gone: mkdir -p {missing}"
    assert checks["e", 1]["fix"].startswith(f"export {TOKEN_ENV}=")
    assert bad_token not in out and bad_bot not in out

    # with the right tokens: the waiting node and the bot chat are what is left
    request = gateway.start_node("doctor-waiting", approve=False)
    try:
        code, doc, out = doctor(env, gateway)
    finally:
        gateway.stop_node("doctor-waiting")
    checks = by_step(doc)
    assert (checks["b", 1]["ok"], checks["b", 1]["reason"]) == (False, "pairing_required"), out
    assert checks["b", 1]["fix"] == f"openclaw nodes approve {request}"
    assert (checks["f", 1]["reason"], checks["f", 1]["fix"]) == (
        "bot_chat",
        "set chat_id to a person's chat or a group, never a bot",
    )
    assert checks["a", 1]["ok"] and checks["e", 1]["ok"]


@contextmanager
def answering_404(protocol: str = "HTTP/1.1") -> Iterator[int]:
    """A web server that is not an OpenClaw gateway: every request gets HTTP 404."""

    class NotFound(BaseHTTPRequestHandler):
        protocol_version = protocol

        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def fails_with_fixes(out: str) -> dict[str, str]:
    """Human doctor output: each FAIL line's subject and step, and the `fix:` line under it."""
    lines = out.splitlines()
    fixes = {}
    for i, line in enumerate(lines):
        if line.startswith("FAIL"):
            subject = " ".join(line.split()[1:3])
            after = lines[i + 1].strip() if i + 1 < len(lines) else ""
            fixes[subject] = after.removeprefix("fix: ") if after.startswith("fix: ") else ""
    return fixes


def test_every_failure_a_new_user_hits_has_its_fix(env: Env, gateway) -> None:  # type: ignore[no-untyped-def]
    """An ssh host refusing, not resolving, not answering; a URL that is not a gateway (HTTP 404);
    a node the gateway holds no current pairing for; Telegram refusing and not resolving: each FAIL
    line is followed by the command or edit that fixes it."""
    closed = free_port()
    ghost = "f" * 64  # a node id the gateway has never seen: "node pairing changed" (unavailable)
    with answering_404() as web, answering_404("HTTP/1.0") as old, silent_port() as silent:
        env.routes(f"""
version: 1
self: tester
gateways:
  gw: {{url: "{gateway.url}", token: "${{{GW_TOKEN_ENV}}}"}}
  web: {{url: "ws://127.0.0.1:{web}", token: "${{{GW_TOKEN_ENV}}}"}}
  old: {{url: "ws://127.0.0.1:{old}/gateway", token: "${{{GW_TOKEN_ENV}}}"}}
telegram: {{token: "${{{TOKEN_ENV}}}", base_url: "http://127.0.0.1:{closed}/bot"}}
hosts:
  refusing: {{ssh: {{host: 127.0.0.1, port: {closed}, user: someone}}}}
  nameless: {{ssh: {{host: nonexistent.invalid, user: someone}}}}
  silent: {{ssh: {{host: 127.0.0.1, port: {silent}}}}}
  ghost: {{node: {{gateway: gw, id: {ghost}}}, workspace: "{env.workspace}"}}
targets:
  a: {{host: refusing, chain: [{{agent_cli: {{via: [ssh]}}}}]}}
  b: {{host: nameless, chain: [{{memory_file: {{via: [ssh]}}}}]}}
  c: {{host: silent, chain: [{{agent_cli: {{via: [ssh]}}}}]}}
  d: {{chain: [{{sessions_send: {{gateway: web}}}}]}}
  d2: {{chain: [{{sessions_send: {{gateway: old}}}}]}}
  e: {{host: ghost, chain: [{{agent_cli: {{via: [node]}}}}]}}
  f: {{chain: [{{telegram: {{chat_id: {ALICE}}}}}]}}
""")
        secrets = {GW_TOKEN_ENV: gateway.token, TOKEN_ENV: TOKEN}
        r = env.run("doctor", "--timeout", "3s", timeout=120, **secrets)
        doc = env.run("doctor", "--timeout", "3s", "--json", timeout=120, **secrets).json()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    fixes = fails_with_fixes(r.out)
    assert all(fixes.values()), r.out  # every FAIL has its fix line
    fixes = {k: v for k, v in fixes.items() if k.endswith(" 1")}  # the targets' steps
    assert set(fixes) == {"a 1", "b 1", "c 1", "d 1", "d2 1", "e 1", "f 1"}, r.out
    got = {c["subject"]: (c["reason"], c["fix"]) for c in doc["checks"] if c["step"] is not None}
    details = {c["subject"]: c["detail"] for c in doc["checks"]}
    assert {f"{k} 1": v[1] for k, v in got.items()} == fixes  # --json carries the same fix

    assert got["a"][0] == "connection_refused"
    assert f"ssh -p {closed} someone@127.0.0.1 true" in fixes["a 1"]
    assert "hosts.refusing.ssh" in fixes["a 1"]
    assert got["b"][0] == "unreachable"
    assert "hosts.nameless.ssh.host" in fixes["b 1"] and "nonexistent.invalid" in fixes["b 1"]
    assert got["c"][0] == "unreachable"
    assert f"ssh -p {silent} 127.0.0.1 true" in fixes["c 1"]
    assert got["d"][0] == "rejected" and "HTTP 404" in details["d"]
    assert "gateways.web.url" in fixes["d 1"] and "openclaw gateway status" in fixes["d 1"]
    assert got["d2"][0] == "bad_response" and "gateways.old.url" in fixes["d2 1"]  # an HTTP/1.0 server
    assert got["e"][0] == "unavailable"
    assert "openclaw node restart" in fixes["e 1"] and "openclaw nodes pending" in fixes["e 1"]
    assert "hosts.ghost.node.id" in fixes["e 1"]
    assert got["f"][0] == "connection_refused"
    assert "telegram.base_url" in fixes["f 1"] and TOKEN not in r.out + r.err

    # Telegram's own API, by a name that does not resolve here
    env.routes(
        (env.tmp / "routes.yaml")
        .read_text()
        .replace(f"http://127.0.0.1:{closed}/bot", "https://nonexistent.invalid/bot")
    )
    r = env.run("doctor", "f", "--timeout", "3s", **secrets)
    fixes = fails_with_fixes(r.out)
    assert r.code == 1 and [k for k in fixes if k.endswith(" 1")] == ["f 1"], r.out + r.err
    assert "does not resolve" in r.out and "telegram.base_url" in fixes["f 1"], r.out
