"""`clawrelay doctor` against the real gateway and node host, the real sshd and the local Bot API server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bot_api import ALICE, HELPER_BOT, TOKEN, TOKEN_ENV, FakeTelegram
from conftest import Env
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
    r = env.run("doctor", "--json", *args, timeout=240, **{GW_TOKEN_ENV: gateway.token, TOKEN_ENV: TOKEN, **extra})
    assert r.out.startswith("{"), r.err[-3000:]
    doc = r.json()
    assert isinstance(doc, dict), r.err
    return r.code, doc, r.out + r.err


def by_step(doc: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(c["subject"], c["step"]): c for c in doc["checks"]}


def test_everything_set_up_is_ok_and_nothing_is_sent(env: Env, gateway, node, sshd, bot_api: FakeTelegram) -> None:  # type: ignore[no-untyped-def]
    routes(env, gateway, sshd, bot_api, targets="""
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
""".replace("ALICE", str(ALICE)))
    prompts = len(gateway.prompts_containing(""))
    code, doc, out = doctor(env, gateway, HTTPS_PROXY="http://127.0.0.1:9")
    assert code == 0, out
    assert doc["ok"] is True
    checks = by_step(doc)
    assert [k for k in checks] == [("config", None), ("proxies", None), *[("xiaom", i) for i in range(1, 6)],
                                   *[("box", i) for i in range(1, 4)]]
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
    routes(env, gateway, sshd, bot_api, extra_hosts=f"""
  stranger: {{ssh: {sshd.routes_entry(known_hosts=str(empty_known_hosts))}}}
  gone: {{local: true, workspace: "{missing}"}}
  waiting: {{node: {{gateway: gw, id: doctor-waiting}}}}
""", targets="""
  a: {chain: [sessions_send]}
  b: {host: waiting, chain: [nodes_run]}
  c: {host: stranger, chain: [{agent_cli: {via: [ssh]}}]}
  d: {host: gone, chain: [memory_file]}
  e: {chain: [{telegram: {chat_id: ALICE}}]}
  f: {chain: [{telegram: {chat_id: HELPER_BOT}}]}
  g: {chain: [{command: {argv: [no-such-program-here]}}]}
""".replace("ALICE", str(ALICE)).replace("HELPER_BOT", str(HELPER_BOT)))
    bad_token = "wrong-gateway-token-1234567"
    bad_bot = TOKEN[:-1] + "X"
    code, doc, out = doctor(env, gateway, **{GW_TOKEN_ENV: bad_token, TOKEN_ENV: bad_bot})
    assert code == 1 and doc["ok"] is False
    checks = by_step(doc)
    got = {k[0]: (c["ok"], c["reason"]) for k, c in checks.items() if k[1] is not None}
    assert got == {"a": (False, "auth"), "b": (False, "auth"), "c": (False, "host_key_unknown"),
                   "d": (False, "not_found"), "e": (False, "auth"), "f": (False, "auth"), "g": (False, "not_found")}
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
    assert (checks["f", 1]["reason"], checks["f", 1]["fix"]) == ("bot_chat", "set chat_id to a person's chat or a group, never a bot")
    assert checks["a", 1]["ok"] and checks["e", 1]["ok"]
