"""Node hosts as users lock them down, and `sync` to a host that only has a node.

`locked` is a node host of its own (own state dir, so its own exec approvals) on the session
gateway, with a dead proxy in its environment and the policy OpenClaw suggests for a careful
machine: `security: allowlist, ask: on-miss, askFallback: deny`. The shared `node` fixture keeps
OpenClaw's default policy. Everything here talks to the real node hosts; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Env
from peer import Gateway, set_exec_policy
from remote import GW_TOKEN_ENV

from clawrelay.transports.memory_note import parse

DEAD_PROXY = "http://127.0.0.1:9/dead-proxy"
HELPER = ".local/share/clawrelay/node-helper.sh"  # under the node user's home
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def routes(env: Env, gateway: Gateway, *, host: str = "locked", node_id: str = "locked") -> None:
    """A host with nothing but a node (no ssh, not local), and one target per host transport."""
    env.routes(
        textwrap.dedent(f"""
    version: 1
    self: tester
    gateways:
      gw: {{url: "{gateway.url}", token: "${{{GW_TOKEN_ENV}}}"}}
    hosts:
      {host}: {{node: {{gateway: gw, id: {node_id}}}, workspace: "{env.workspace}", openclaw: "{gateway.bin_dir / "openclaw"}"}}
    targets:
      by-memory: {{host: {host}, chain: [memory_file: {{timeout: 30s}}]}}
      by-event: {{host: {host}, session: "agent:main:main", chain: [nodes_run: {{timeout: 60s}}]}}
      by-cli: {{host: {host}, session: "agent:main:policy-cli", chain: [agent_cli: {{timeout: 90s}}]}}
    """).lstrip()
    )


def fix_lines(out: str) -> list[str]:
    return [
        line.split("fix: ", 1)[1].strip() for line in out.splitlines() if "fix: openclaw approvals" in line
    ]


def raw_run(gateway: Gateway, node_id: str, argv: list[str]) -> dict:
    """system.run straight through the gateway, as an agent's exec tool would send it."""
    res = gateway.call(
        "node.invoke",
        {
            "nodeId": node_id,
            "command": "system.run",
            "timeoutMs": 20000,
            "idempotencyKey": f"t-{time.monotonic_ns()}",
            "params": {"command": argv, "agentId": "main", "timeoutMs": 15000, "suppressNotifyOnExit": True},
        },
    )
    return res


def _module_env(factory: pytest.TempPathFactory, name: str, gateway: Gateway) -> Env:
    """An Env (as the `env` fixture makes) for a module-scoped fixture, with the routes written."""
    tmp = factory.mktemp(name)
    workspace = tmp / "workspace"
    workspace.mkdir()
    made = Env(
        tmp,
        tmp / "state",
        workspace,
        {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp / "home"),
            "CLAWRELAY_HOME": str(tmp / "state"),
            GW_TOKEN_ENV: gateway.token,
        },
    )
    routes(made, gateway)
    return made


@pytest.fixture(scope="module")
def locked(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The locked-down node host's id. clawrelay met it once before the lock (a doctor run, which
    installs clawrelay's helper there), as on a machine set up first and locked down later."""
    node_id = gateway.start_node("locked", env={"HTTP_PROXY": DEAD_PROXY, "https_proxy": DEAD_PROXY})
    setup = _module_env(tmp_path_factory, "locked-setup", gateway)
    r = setup.run("doctor", "by-memory", timeout=120)
    assert r.code == 0, r.out + r.err
    assert (gateway.node_home("locked") / HELPER).is_file()
    set_exec_policy(gateway, node_id, security="allowlist", ask="on-miss", askFallback="deny")
    yield node_id
    gateway.stop_node("locked")


@pytest.fixture(scope="module")
def fixed(gateway: Gateway, locked: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Doctor on the locked node, then exactly the fix lines it printed, run as its operator would."""
    doc = _module_env(tmp_path_factory, "locked-doctor", gateway)
    before = doc.run("doctor", timeout=180)
    lines = fix_lines(before.out)
    for line in dict.fromkeys(lines):  # each once, in the order printed
        argv = shlex.split(line)
        assert argv[:4] == ["openclaw", "approvals", "allowlist", "add"], line
        done = gateway.openclaw(*argv[1:])
        assert done.returncode == 0, done.stdout + done.stderr
    after = doc.run("doctor", timeout=180)
    return {"before": before, "lines": lines, "after": after}


def test_doctor_prints_the_allowlist_lines_a_locked_node_needs(
    fixed: dict[str, object], gateway: Gateway
) -> None:
    before, after, lines = fixed["before"], fixed["after"], fixed["lines"]
    assert before.code != 0 and "Traceback" not in before.err  # type: ignore[attr-defined]
    patterns = {shlex.split(line)[-1] for line in lines}
    assert all(shlex.split(line)[4:6] == ["--node", "locked"] for line in lines)
    assert f"~/{HELPER}" in patterns, before.out  # type: ignore[attr-defined]  # the node's own home
    assert os.path.realpath(gateway.bin_dir / "openclaw") in patterns  # nodes_run, agent_cli
    assert {"/usr/bin/git", "/usr/bin/test", "/usr/bin/printenv"} <= patterns  # sync, checks, `~`
    # never a program that would let any command through
    assert not [p for p in patterns if Path(p).name in ("env", "sh", "bash", "dash", "*", "python3", "node")]
    assert after.code == 0, after.out  # type: ignore[attr-defined]
    assert "fix:" not in after.out  # type: ignore[attr-defined]


def test_after_the_fix_lines_every_transport_runs_without_asking(
    env: Env, gateway: Gateway, locked: str, fixed: dict[str, object]
) -> None:
    routes(env, gateway)
    extra = {GW_TOKEN_ENV: gateway.token}
    for target in ("by-memory", "by-event", "by-cli"):
        t0 = time.monotonic()
        r = env.run("send", target, f"through the locked node to {target}", "--json", timeout=150, **extra)
        assert r.code == 0, r.out + r.err
        assert "approval" not in r.err and time.monotonic() - t0 < 60, r.err
        doc = r.json()
        assert doc["attempts"][-1]["carrier"] == "node", doc
    (entry,) = parse(env.note())
    assert entry.body == "through the locked node to by-memory"


def test_exec_names_the_exact_line_and_a_proxy_on_the_node_never_reaches_the_program(
    env: Env, gateway: Gateway, locked: str, fixed: dict[str, object]
) -> None:
    routes(env, gateway)
    extra = {GW_TOKEN_ENV: gateway.token}
    r = env.run("exec", "locked", "--timeout", "4s", "--", "id", "-un", **extra)  # nobody approves
    assert r.code == 255 and "Traceback" not in r.err, r.err
    line = "openclaw approvals allowlist add --node locked /usr/bin/id"
    assert line in r.err.splitlines()[-1], r.err
    assert env.run("log", "--json").json()[-1]["attempts"][0]["reason"] in ("approval_timeout", "denied")
    assert gateway.openclaw(*shlex.split(line)[1:]).returncode == 0
    r = env.run("exec", "locked", "--", "id", "-un", **extra)
    assert (r.code, r.err) == (0, ""), r.err
    # the node host's own environment has the proxy: an agent's plain system.run sees it
    seen = raw_run(gateway, locked, ["printenv", "HTTP_PROXY"])
    assert seen["ok"] and DEAD_PROXY in json.dumps(seen["payload"]), seen
    for var in ("HTTP_PROXY", "https_proxy"):
        r = env.run("exec", "locked", "--", "printenv", var, **extra)
        assert (r.code, r.out) == (1, ""), r.err  # not set for the program clawrelay ran
    r = env.run("exec", "locked", "--", "printenv", "HOME", **extra)
    assert (r.code, r.out.strip(), r.err) == (0, str(gateway.node_home("locked")), "")


def test_a_helper_the_node_lets_nothing_write_is_one_line_with_the_copy_to_make(
    env: Env, gateway: Gateway, locked: str, fixed: dict[str, object]
) -> None:
    routes(env, gateway)
    extra = {GW_TOKEN_ENV: gateway.token}
    helper = gateway.node_home("locked") / HELPER
    saved = helper.read_bytes()
    helper.unlink()
    try:
        r = env.run("send", "by-memory", "no helper there", "--json", timeout=60, **extra)
        assert r.code == 1 and "Traceback" not in r.err
        step = r.json()["attempts"][0]
        assert step["reason"] == "denied" and "helper" in step["detail"], step
        d = env.run("doctor", "by-memory", timeout=120, **extra)
        assert d.code != 0
        copy = [line for line in d.out.splitlines() if "fix: copy" in line and f"locked:~/{HELPER}" in line]
        assert copy, d.out
        local = Path(shlex.split(copy[0].split("fix: ", 1)[1])[1])  # fix: copy LOCAL to locked:REMOTE
        assert local.read_bytes() == saved  # clawrelay wrote the very file the node needs, here
    finally:
        helper.write_bytes(saved)
    r = env.run("send", "by-memory", "helper back", "--json", timeout=60, **extra)
    assert r.code == 0, r.err


# -- what a node runs, run here by the local `sh` (no server) -------------------------------------


def test_the_node_form_of_an_argv_gives_the_program_exactly_its_argv_and_no_proxy() -> None:
    from clawrelay.carriers.proxy import PROXY_VARS, shell_wrap

    argv = [
        "printf",
        "[%s]\n",
        "a b",
        "it's",
        '"q"',
        "$(id)",
        "`id`",
        "x;y",
        "a\nb",
        "~",
        "*",
        "",
        "-n",
        "小m",
    ]
    proxies = {v: DEAD_PROXY for v in PROXY_VARS}
    out = subprocess.run(
        shell_wrap(argv), capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **proxies}
    )
    assert (out.returncode, out.stdout) == (0, "".join(f"[{a}]\n" for a in argv[2:])), out.stderr
    out = subprocess.run(
        shell_wrap(["env"]), capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **proxies}
    )
    assert DEAD_PROXY not in out.stdout and "PATH=" in out.stdout


def test_the_node_helper_writes_the_note_the_ssh_script_writes(tmp_path: Path) -> None:
    from clawrelay.carriers.node_helper import helper_script
    from clawrelay.envelope import Envelope
    from clawrelay.transports.memory_remote import args_for, argv_for

    helper = tmp_path / "node-helper.sh"
    version, text = helper_script()
    helper.write_text(text)
    message = Envelope(sender="tester", target="t", body="one\n\n$(id) 'q' ünï\n")
    when = datetime.now().astimezone()  # one clock for both runs
    notes = []
    for name in ("by-ssh", "by-node"):
        ws = tmp_path / name
        ws.mkdir()
        argv = (
            argv_for(message, str(ws), when)
            if name == "by-ssh"
            else ["sh", str(helper), version, "memory", *(f":{a}" for a in args_for(message, str(ws), when))]
        )
        for _ in range(2):  # the second time: already there
            done = subprocess.run(
                argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
            )
            assert done.returncode == 0, done.stderr
        notes.append("".join(p.read_text() for p in (ws / "memory").glob("*.md")))
    assert notes[0] == notes[1] and notes[0].count(message.id) == 1


# -- sync to a host that has only a node ---------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=GIT_ENV
    ).stdout.strip()


def commit(work: Path, name: str, data: bytes) -> str:
    (work / name).write_bytes(data)
    git(work, "add", name)
    git(work, "commit", "-qm", f"add {name}")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture(params=["default", "locked"])
def node_host(request: pytest.FixtureRequest, env: Env, gateway: Gateway) -> str:
    """The host name for a node with OpenClaw's default policy, or the locked-down one (after its
    fix lines)."""
    if request.param == "default":
        request.getfixturevalue("node")
        routes(env, gateway, host="xiaom", node_id="xiaom")
        return "xiaom"
    request.getfixturevalue("fixed")
    routes(env, gateway)
    return "locked"


def test_sync_to_a_node_only_host_by_origin(env: Env, gateway: Gateway, node_host: str) -> None:
    origin = env.tmp / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    work = env.tmp / "work"
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True, capture_output=True)
    git(work, "checkout", "-q", "-b", "main")
    first = commit(work, "a.txt", b"one\n")
    git(work, "push", "-q", "origin", "main")
    dest = env.tmp / "remote" / "r"
    extra = {GW_TOKEN_ENV: gateway.token}
    r = env.run("sync", str(work), "--to", node_host, "--dest", str(dest), "--json", timeout=120, **extra)
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["action"], doc["method"], doc["carrier"], doc["head"]) == ("cloned", "origin", "node", first)
    second = commit(work, "b.txt", b"two\n")
    git(work, "push", "-q", "origin", "main")
    link = env.tmp / "remote-ws" / "skills"
    r = env.run(
        "sync",
        str(work),
        "--to",
        node_host,
        "--dest",
        str(dest),
        "--link",
        str(link),
        "--json",
        timeout=120,
        **extra,
    )
    assert r.code == 0, r.err
    assert (r.json()["action"], git(dest, "rev-parse", "HEAD")) == ("fast-forwarded", second)
    assert os.readlink(link) == str(dest)


def test_sync_without_an_origin_moves_a_bundle_over_the_node(
    env: Env, gateway: Gateway, node_host: str
) -> None:
    work = env.tmp / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    head = commit(work, "big.bin", os.urandom(700_000))  # more than one node run's worth of argv
    dest = env.tmp / "remote" / "r"
    extra = {GW_TOKEN_ENV: gateway.token}
    r = env.run("sync", str(work), "--to", node_host, "--dest", str(dest), "--json", timeout=180, **extra)
    assert r.code == 0, r.err
    assert (r.json()["method"], r.json()["action"]) == ("bundle", "cloned")
    assert git(dest, "rev-parse", "HEAD") == head
    assert (dest / "big.bin").read_bytes() == (work / "big.bin").read_bytes()
    newer = commit(work, "small.txt", b"more\n")
    r = env.run("sync", str(work), "--to", node_host, "--dest", str(dest), "--json", timeout=180, **extra)
    assert r.code == 0, r.err
    assert (r.json()["method"], r.json()["action"], git(dest, "rev-parse", "HEAD")) == (
        "bundle",
        "fast-forwarded",
        newer,
    )
    home = gateway.node_home(node_host)
    assert not [p for p in home.rglob("*.bundle*") if "clawrelay" in str(p)]  # nothing left on the host
