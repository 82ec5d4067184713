"""`clawrelay exec` on every carrier, against a real sshd, the real node host, and this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import Env, wait_for
from peer import Gateway, free_port, set_exec_policy
from remote import GW_TOKEN_ENV, remote_routes
from sshd import Sshd

NASTY = [
    "two words",
    'it\'s "quoted"',
    "a; rm -rf /nothing",
    "$(touch /tmp/clawrelay-pwned)",
    "line1\nline2",
    "`id`",
    "*",
    "",
    "--flag",
    "tab\there",
    "ünïcødé 小m",
]
ECHO_ARGV = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]

# every test twice: in its own process, and inside a relay (`clawrelay serve`)
pytestmark = pytest.mark.usefixtures("relay_mode")


@pytest.fixture(
    params=[  # ssh and node bring up their servers below, by name: the marker is on their params
        "local",
        pytest.param("ssh", marks=pytest.mark.integration),
        pytest.param("node", marks=pytest.mark.integration),
    ]
)
def carrier(request: pytest.FixtureRequest, env: Env) -> tuple[str, dict[str, str]]:
    """(host, extra env) for one carrier; ssh and node bring up their servers on first use."""
    name = request.param
    if name == "local":
        remote_routes(env)
        return "here", {}
    if name == "ssh":
        remote_routes(env, sshd=request.getfixturevalue("sshd"))
        return "box", {}
    gw: Gateway = request.getfixturevalue("gateway")
    request.getfixturevalue("node")
    remote_routes(env, gateway=gw)
    return "xiaom", {GW_TOKEN_ENV: gw.token}


def no_process_matching(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1


def test_argv_arrives_verbatim_and_the_run_is_journaled(
    env: Env, carrier: tuple[str, dict[str, str]]
) -> None:
    host, extra = carrier
    Path("/tmp/clawrelay-pwned").unlink(missing_ok=True)
    r = env.run("exec", host, "--json", "--", *ECHO_ARGV, *NASTY, **extra)
    assert r.code == 0, r.err
    doc = r.json()
    assert json.loads(doc["stdout"]) == NASTY
    assert doc["host"] == host and doc["exit_code"] == 0 and doc["timed_out"] is False
    assert doc["carrier"] == {"here": "local", "box": "ssh", "xiaom": "node"}[host]
    assert not Path("/tmp/clawrelay-pwned").exists()
    (rec,) = env.run("log", "--json").json()
    assert rec["kind"] == "exec" and rec["status"] == "delivered" and rec["id"] == doc["id"]
    assert rec["attempts"][0]["carrier"] == doc["carrier"] and "$(touch" in rec["body"]


def test_exit_code_and_output_are_the_remote_ones(env: Env, carrier: tuple[str, dict[str, str]]) -> None:
    host, extra = carrier
    r = env.run("exec", host, "--", "sh", "-c", "echo out; echo err >&2; exit 3", **extra)
    assert (r.code, r.out, r.err) == (3, "out\n", "err\n")
    (rec,) = env.run("log", "--json").json()
    assert rec["status"] == "failed" and rec["attempts"][0]["reason"] == "exit_status"
    assert env.run("outbox", "list", "--json").json() == []  # a command is never queued for retry


def test_timeout_is_124_and_leaves_nothing_running(env: Env, carrier: tuple[str, dict[str, str]]) -> None:
    host, extra = carrier
    marker = f"{time.time() % 1000:.3f}"  # `sleep 30.123` on this machine identifies our command
    r = env.run(
        "exec", host, "--timeout", "2s", "--json", "--", "sh", "-c", f"echo started; sleep 3{marker}", **extra
    )
    assert r.code == 124, r.err
    doc = r.json()
    assert doc["timed_out"] is True and doc["exit_code"] == 124
    wait_for(lambda: no_process_matching(f"sleep 3{marker}"), 10)


def test_cwd_and_shell_opt_in(env: Env, carrier: tuple[str, dict[str, str]]) -> None:
    host, extra = carrier
    r = env.run("exec", host, "--cwd", str(env.workspace), "--", "pwd", **extra)
    assert (r.code, r.out.strip()) == (0, str(env.workspace)), r.err
    r = env.run("exec", host, "--shell", "--", "echo $((6*7)) | tr 4 X", **extra)
    assert (r.code, r.out) == (0, "X2\n"), r.err


def test_a_dead_proxy_in_the_environment_changes_nothing(
    env: Env, carrier: tuple[str, dict[str, str]]
) -> None:
    host, extra = carrier
    dead = f"http://127.0.0.1:{free_port()}"
    proxies = {
        k: dead for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
    }
    r = env.run("exec", host, "--", "env", **extra, **proxies)
    assert r.code == 0, r.err
    assert not [line for line in r.out.splitlines() if line.split("=")[0].upper().endswith("_PROXY")]


def test_strip_proxy_false_keeps_them_for_a_host_that_needs_them(env: Env) -> None:
    remote_routes(env, host_extra=", strip_proxy: false")
    r = env.run("exec", "here", "--", "env", HTTPS_PROXY="http://127.0.0.1:3128")
    assert r.code == 0 and "HTTPS_PROXY=http://127.0.0.1:3128" in r.out


def test_detach_returns_at_once_with_pid_and_log(env: Env, carrier: tuple[str, dict[str, str]]) -> None:
    host, extra = carrier
    flag = env.tmp / f"done-{uuid.uuid4().hex[:6]}"
    r = env.run(
        "exec", host, "--detach", "--json", "--", "sh", "-c", f"sleep 2; echo finished; touch {flag}", **extra
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["pid"] > 0 and not flag.exists() and doc["log"].endswith(f"/{doc['id']}.log")
    wait_for(flag.exists, 30)
    assert Path(doc["log"]).read_text() == "finished\n"


def test_unknown_host_key_is_refused_with_the_fix(env: Env, sshd: Sshd) -> None:
    empty = env.tmp / "known_hosts"
    empty.write_text("")
    remote_routes(env, sshd=sshd, ssh_extra={"known_hosts": str(empty)})
    marker = env.tmp / "ran"
    r = env.run("exec", "box", "--", "touch", str(marker))
    assert r.code == 255
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in r.err and r.err.count("\n") == 1
    assert not marker.exists()
    (rec,) = env.run("log", "--json").json()
    assert rec["status"] == "failed" and rec["attempts"][0]["reason"] == "host_key_unknown"


def test_unreachable_ssh_falls_to_the_next_carrier_before_anything_ran(env: Env, sshd: Sshd) -> None:
    port = free_port()
    env.routes(f"""
    version: 1
    self: tester
    hosts:
      both: {{ssh: {{host: 127.0.0.1, port: {port}, known_hosts: "{sshd.known_hosts}"}}, local: true}}
    targets:
      t: {{host: both, chain: [memory_file]}}
    """)
    r = env.run("exec", "both", "--json", "--", "echo", "hi")  # local first (the default order)
    assert r.code == 0 and r.json()["carrier"] == "local"
    env.routes(f"""
    version: 1
    self: tester
    hosts:
      both: {{ssh: {{host: 127.0.0.1, port: {port}, known_hosts: "{sshd.known_hosts}"}}, local: true,
              workspace: "{env.workspace}"}}
    targets:
      t: {{host: both, chain: [memory_file: {{via: [ssh, local]}}]}}
    """)
    r = env.run("send", "t", "ssh is down", "--json")  # ssh first: refused, so the same attempt goes local
    assert r.code == 0, r.err
    (attempt,) = r.json()["attempts"]
    assert attempt["carrier"] == "local" and "ssh is down" in env.note()
    r = env.run("exec", "both", "--via", "ssh", "--", "echo", "hi")
    assert r.code == 255 and "connection refused" in r.err


def test_bad_input_is_one_line_and_nothing_runs(env: Env) -> None:
    remote_routes(env)
    r = env.run("exec", "nowhere", "--", "true")
    assert r.code == 3 and "unknown host 'nowhere'" in r.err and r.err.count("\n") == 1
    r = env.run("exec", "here", "--via", "carrier-pigeon", "--", "true")
    assert r.code == 2 and "--via" in r.err
    r = env.run("exec", "here", "--via", "ssh", "--", "true")
    assert r.code == 2 and "has no ssh carrier" in r.err
    assert env.run("log", "--json").json() == []


def test_a_denied_command_says_how_to_allow_it(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(env, gateway=gateway)
    set_exec_policy(gateway, node, security="deny", ask="off", askFallback="deny")
    try:
        r = env.run("exec", "xiaom", "--", "echo", "hi", **{GW_TOKEN_ENV: gateway.token})
    finally:
        set_exec_policy(gateway, node, security="full", ask="off", askFallback="full")
    assert r.code == 255 and r.out == ""
    assert "refused the command" in r.err and "openclaw approvals allowlist add --node xiaom" in r.err
    (rec,) = env.run("log", "--json").json()
    assert rec["attempts"][0]["reason"] == "denied"


def test_approval_asked_of_a_human_then_given(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(env, gateway=gateway)
    set_exec_policy(gateway, node, security="allowlist", ask="on-miss", askFallback="deny")
    try:
        proc = env.spawn(
            "exec",
            "xiaom",
            "--timeout",
            "60s",
            "--",
            "echo",
            "approved by a human",
            **{GW_TOKEN_ENV: gateway.token},
        )
        line = (
            proc.stderr.readline()
        )  # clawrelay: node … asks for approval …; run: openclaw approvals resolve ID …
        assert "openclaw approvals resolve" in line, line
        approval_id = line.split("openclaw approvals resolve ")[1].split()[0]
        assert gateway.call("exec.approval.resolve", {"id": approval_id, "decision": "allow-once"})["ok"]
        out, err = proc.communicate(timeout=60)
    finally:
        set_exec_policy(gateway, node, security="full", ask="off", askFallback="full")
    assert (proc.returncode, out) == (0, "approved by a human\n"), err


def test_approval_by_clawrelay_when_the_routes_allow_it(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(env, gateway=gateway, node_extra=", approve: allow-once")
    set_exec_policy(gateway, node, security="allowlist", ask="on-miss", askFallback="deny")
    try:
        r = env.run("exec", "xiaom", "--", "echo", "allowed once", **{GW_TOKEN_ENV: gateway.token})
    finally:
        set_exec_policy(gateway, node, security="full", ask="off", askFallback="full")
    assert (r.code, r.out) == (0, "allowed once\n"), r.err


def test_node_not_connected_is_retryable_and_clear(env: Env, gateway: Gateway, node: str) -> None:
    remote_routes(env, gateway=gateway)
    r = env.run("exec", "xiaom", "--", "true", **{GW_TOKEN_ENV: gateway.token})
    assert r.code == 0
    env.routes((env.tmp / "routes.yaml").read_text().replace("id: xiaom", "id: nobody"))
    r = env.run("exec", "xiaom", "--", "true", **{GW_TOKEN_ENV: gateway.token})
    assert r.code == 255 and "no such node" in r.err and "xiaom" in r.err


def test_a_token_typed_into_the_command_line_is_masked_in_its_record(env: Env) -> None:
    """The gateway token in an argv (a user's `curl -H …`) never lands in the journal, even though
    nothing in this command needed it."""
    token = "typed-gateway-token-5f3e"
    env.routes(f"""
    version: 1
    self: tester
    gateways:
      gw: {{url: "ws://127.0.0.1:{free_port()}", token: "${{{GW_TOKEN_ENV}}}"}}
    hosts:
      here: {{local: true, workspace: "{env.workspace}"}}
    targets:
      t: {{host: here, chain: [memory_file]}}
    """)
    r = env.run("exec", "here", "--json", "--", "echo", f"Authorization: {token}", **{GW_TOKEN_ENV: token})
    assert r.code == 0, r.err
    assert r.json()["stdout"] == "Authorization: ***\n" and token not in r.out  # --json masks it too
    (record,) = env.run("log", "--json").json()
    assert token not in json.dumps(record) and "Authorization: ***" in record["body"]
    assert all(token.encode() not in p.read_bytes() for p in env.home.rglob("*") if p.is_file())


def test_a_local_program_named_like_a_shell_builtin_is_the_program_not_the_builtin(env: Env) -> None:
    """The local carrier runs each program under a small sh (its lifeline): `true`, `echo` or
    `kill` given as argv[0] must still be the program on PATH, as exec(2) would find it."""
    bin_dir = env.tmp / "bin"
    bin_dir.mkdir()
    marker = env.tmp / "ran"
    fake = bin_dir / "true"
    fake.write_text(f"#!/bin/sh\necho \"$0 $*\" > '{marker}'\n")
    fake.chmod(0o755)
    remote_routes(env)
    r = env.run(
        "exec", "here", "--via", "local", "--", "true", "-e", "x", PATH=f"{bin_dir}:{env.vars['PATH']}"
    )
    assert r.code == 0, r.err
    assert marker.read_text().split()[1:] == ["-e", "x"]


def test_the_log_keeps_one_line_per_record_whatever_a_command_holds(env: Env) -> None:
    remote_routes(env)
    assert (
        env.run("exec", "here", "--via", "local", "--", "printf", "%s", "x\nclawrelay: forged line").code == 0
    )
    lines = env.run("log", "--brief").out.splitlines()
    assert not any(line.startswith("clawrelay:") for line in lines), lines
    assert len([line for line in lines if not line.startswith(" ")]) == 1, lines
