"""nodes_run, agent_cli and memory_file on remote hosts, through the real node host and sshd."""

from __future__ import annotations

import subprocess
import sys

from conftest import PROGRAMS, Env, wait_for
from peer import Gateway
from remote import GW_TOKEN_ENV, remote_routes
from sshd import Sshd

from clawrelay.transports.memory_note import parse

TEXT = 'it\'s "quoted"; $(touch /tmp/clawrelay-pwned) `id`\nsecond line ünï 小m'


def test_memory_file_over_ssh_and_node_arrives_verbatim(
    env: Env, sshd: Sshd, gateway: Gateway, node: str
) -> None:
    remote_routes(
        env,
        sshd=sshd,
        gateway=gateway,
        targets="""
        by-ssh: {host: box, chain: [memory_file]}
        by-node: {host: xiaom, chain: [memory_file]}
    """,
    )
    ids = {}
    for target in ("by-ssh", "by-node"):
        r = env.run("send", target, TEXT, "--json", **{GW_TOKEN_ENV: gateway.token})
        assert r.code == 0, r.err
        doc = r.json()
        assert doc["attempts"][0]["carrier"] == {"by-ssh": "ssh", "by-node": "node"}[target]
        ids[target] = doc["id"]
    entries = parse(env.note())
    assert sorted((e.id, e.sender, e.body) for e in entries) == sorted(
        (i, "tester", TEXT) for i in ids.values()
    )


def test_memory_file_over_ssh_concurrent_senders_never_interleave(env: Env, sshd: Sshd) -> None:
    remote_routes(env, sshd=sshd, targets="t: {host: box, chain: [memory_file: {timeout: 60s}]}")
    procs = [env.spawn("send", "t", f"message {i}\n" + "x" * 3000) for i in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    entries = parse(env.note())
    assert sorted(e.body for e in entries) == [f"message {i}\n" + "x" * 3000 for i in range(8)]


def test_the_remote_writer_never_appends_an_id_twice(env: Env) -> None:
    """The script the ssh and node paths run, run twice with one id (a retry after a lost answer)."""
    from clawrelay.envelope import Envelope
    from clawrelay.transports.memory_remote import argv_for

    message = Envelope(sender="tester", target="t", body=TEXT)
    argv = argv_for(message, str(env.workspace), None)
    outs = [
        subprocess.run(
            argv, capture_output=True, text=True, env={"HOME": str(env.tmp), "PATH": "/usr/bin:/bin"}
        )
        for _ in range(2)
    ]
    assert [o.returncode for o in outs] == [0, 0]
    assert outs[0].stdout.startswith("written ") and outs[1].stdout.startswith("already ")
    assert env.note().count(message.id) == 1


def test_remote_memory_file_refuses_a_missing_workspace(env: Env, sshd: Sshd) -> None:
    env.routes(f"""
    version: 1
    self: tester
    hosts:
      box: {{ssh: {sshd.routes_entry()}, workspace: "{env.tmp / "no-such-workspace"}"}}
    targets:
      t: {{host: box, chain: [memory_file]}}
    """)
    r = env.run("send", "t", "hello", "--json")
    assert r.code == 1
    assert r.json()["attempts"][0]["reason"] == "not_found"
    assert not (env.tmp / "no-such-workspace").exists()


def test_nodes_run_wakes_the_target_session(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(
        env,
        gateway=gateway,
        targets="""
        xm: {host: xiaom, session: "agent:main:main", chain: [nodes_run: {timeout: 90s}]}
    """,
    )
    r = env.run("send", "xm", "nodes_run says hello", "--json", timeout=120, **{GW_TOKEN_ENV: gateway.token})
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["via"], doc["attempts"][0]["carrier"]) == ("nodes_run", "node")
    wait_for(lambda: gateway.prompts_containing(doc["id"]), 60)  # the heartbeat turn saw the event
    assert "nodes_run says hello" in gateway.prompts_containing(doc["id"])[0]


def test_agent_cli_delivers_with_the_reply(env: Env, gateway: Gateway, node: str) -> None:
    session = "agent:main:relay-cli"
    remote_routes(
        env,
        gateway=gateway,
        targets=f"""
        xm: {{host: xiaom, session: "{session}", chain: [agent_cli: {{timeout: 90s}}]}}
    """,
    )
    r = env.run("send", "xm", "agent_cli says hello", "--json", timeout=120, **{GW_TOKEN_ENV: gateway.token})
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["via"] == "agent_cli" and "agent_cli says hello" in doc["reply"]
    assert len(gateway.user_messages(session, doc["id"])) == 1


def test_agent_cli_that_ran_an_embedded_agent_is_not_delivered(env: Env) -> None:
    fake = f'openclaw: ["{sys.executable}", "{PROGRAMS / "fake_openclaw.py"}", "embedded"]'
    remote_routes(env, host_extra=f", {fake}", targets="t: {host: here, chain: [agent_cli, memory_file]}")
    r = env.run("send", "t", "hello", "--json")
    assert r.code == 0
    doc = r.json()
    first = doc["attempts"][0]
    assert (first["outcome"], first["reason"]) == ("failed", "embedded_fallback")
    assert doc["via"] == "memory_file"


def test_agent_cli_that_prints_its_result_and_hangs_is_killed_and_counted(env: Env) -> None:
    fake = f'openclaw: ["{sys.executable}", "{PROGRAMS / "fake_openclaw.py"}", "hang-after-result"]'
    remote_routes(env, host_extra=f", {fake}", targets="t: {host: here, chain: [agent_cli: {timeout: 5s}]}")
    r = env.run("send", "t", "hello", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["via"] == "agent_cli" and "did not exit: killed" in doc["attempts"][0]["detail"]


def test_a_node_the_gateway_cannot_reach_moves_the_chain_on(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(
        env,
        gateway=gateway,
        targets="""
        xm: {host: xiaom, chain: [nodes_run, memory_file: {via: [local]}]}
    """,
    )
    absent = "f" * 64  # a node id the gateway has never seen connected
    env.routes(
        (env.tmp / "routes.yaml")
        .read_text()
        .replace("id: xiaom", f"id: {absent}")
        .replace("xiaom: {node", "xiaom: {local: true, node")
    )
    r = env.run("send", "xm", "to an absent node", "--json", **{GW_TOKEN_ENV: gateway.token})
    assert r.code == 0, r.err
    doc = r.json()
    first = doc["attempts"][0]
    # 2026.9.6 answers an id it has no connection for with UNAVAILABLE ("node pairing changed…")
    assert (first["outcome"], first["retryable"]) == ("failed", True), first
    assert first["reason"] in ("node_offline", "unavailable")
    assert doc["via"] == "memory_file"


def test_a_connection_lost_after_the_message_left_is_ambiguous(env: Env, sshd: Sshd) -> None:
    """The ssh session dies while `openclaw agent` runs there: it may have arrived, so not `failed`."""
    fake = f'openclaw: ["{sys.executable}", "{PROGRAMS / "drop_ssh.py"}"]'
    env.routes(f"""
    version: 1
    self: tester
    hosts:
      box: {{ssh: {sshd.routes_entry()}, workspace: "{env.workspace}", {fake}}}
    targets:
      t: {{host: box, chain: [agent_cli: {{timeout: 30s}}]}}
    """)
    r = env.run("send", "t", "hello", "--json")
    assert r.code == 4, r.err
    (attempt,) = r.json()["attempts"]
    assert (attempt["outcome"], attempt["reason"], attempt["carrier"]) == (
        "ambiguous",
        "connection_lost",
        "ssh",
    )
