"""The resident relay (`clawrelay serve`), from the outside: what a user of the CLI notices.

Every test runs a real `clawrelay serve` on its own state dir and real clients (the forked
runner of conftest, or the console script), with local routes only: `command` steps running
tests/programs/relay_probe.py (which records its ancestors' pids, its working folder, its umask
and one variable of its environment) and `memory_file` steps. So whether a command ran inside
the relay is read from the process tree, not taken on trust. No gateway is needed: each test
takes a second or two.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CLAWRELAY, Env, alive, header, program, wait_for

from clawrelay.relay.address import short_dir, socket_path
from clawrelay.relay.client import HELLO_TIMEOUT, ask_stat
from clawrelay.service.state import last_pass

pytestmark = pytest.mark.integration

# values that differ between two runs of the same command: ids, times, durations
VOLATILE = {"id", "elapsed_ms", "created_ms", "expires_ms", "next_attempt_ms", "at_ms", "started_ms"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# -- the relay ------------------------------------------------------------------------------------


class Relay:
    """`clawrelay serve --interval 1h` on an Env's state dir, its output in files (readable while
    it runs, and never a full pipe that would stall it); started, signalled and killed by pid."""

    count = 0

    def __init__(self, env: Env, *, cwd: Path | None = None, **extra: str) -> None:
        Relay.count += 1
        self.env = env
        self.socket = socket_path(env.home)
        self.out_path = env.tmp / f"relay{Relay.count}.out"
        self.err_path = env.tmp / f"relay{Relay.count}.err"
        assert CLAWRELAY
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [CLAWRELAY, "serve", "--interval", "1h"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd or env.tmp,
                env={**env.vars, **extra},
            )
        env.spawned.append(self.proc)  # type: ignore[arg-type]  # killed by the fixture if still up
        self.pid = self.proc.pid
        end = time.monotonic() + 60
        while ask_stat(str(env.home)).get("pid") != self.pid:
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.err()}"
            assert time.monotonic() < end, f"the relay did not answer within 60 s: {self.err()}"
            time.sleep(0.05)
        # and its flusher's first pass is over: a test starts with a relay at rest (one stopped
        # with SIGSTOP in the middle of a journal write would hold the journal's lock)
        while (last_pass(env.home) or {}).get("pid") != self.pid:
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.err()}"
            assert time.monotonic() < end, f"the relay made no first pass within 60 s: {self.err()}"
            time.sleep(0.05)

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, and its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def assert_clean_stop(self) -> None:
        code = self.stop()
        assert code == 0, f"the relay exited {code}: {self.err()[-3000:]}"
        assert "Traceback" not in self.err(), self.err()[-6000:]


@pytest.fixture
def relay(env: Env) -> Iterator[Relay]:
    """A relay for the test; stopped with SIGTERM at the end, which must go cleanly."""
    r = Relay(env)
    yield r
    if r.proc.poll() is None:
        r.assert_clean_stop()


# -- routes and what the probe saw ----------------------------------------------------------------


def probe(out: Path, seconds: float = 0, code: int = 0, timeout: str = "60s", retries: int = 0) -> str:
    argv = program("relay_probe.py", out, seconds, code)
    return f"command: {{argv: {json.dumps(argv)}, timeout: {timeout}, retries: {retries}}}"


def routes(env: Env, *steps: str, workspace: Path | None = None, path: Path | None = None) -> Path:
    text = header(workspace or env.workspace) + "targets:\n  xiaom:\n    host: here\n    chain:\n"
    text += "".join(f"      - {s}\n" for s in steps)
    if path is None:
        return env.routes(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def runs(out: Path) -> list[dict[str, Any]]:
    """Each run of relay_probe.py that wrote OUT, in order (only whole lines)."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines(keepends=True) if line.endswith("\n")]


def shape(doc: Any) -> Any:
    """`doc` with what differs between two runs of one command (ids, times) blanked."""
    if isinstance(doc, dict):
        return {k: ("*" if k in VOLATILE and v is not None else shape(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [shape(v) for v in doc]
    return doc


def text_shape(text: str) -> str:
    return re.sub(r"\d+", "N", UUID.sub("ID", text))


def journal(env: Env) -> list[dict[str, Any]]:
    r = env.run("--no-relay", "log", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert isinstance(doc, list)
    return doc


def attempts(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(a["transport"], a["outcome"], a["reason"], a["retryable"]) for a in record["attempts"]]


def console(
    env: Env, *args: str, cwd: Path | None = None, umask: int = -1, **extra: str
) -> subprocess.Popen[str]:
    """The console script, started (for a signal to it: the forked runner cannot be signalled)."""
    proc = subprocess.Popen(
        env.cmd(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or env.tmp,
        env={**env.vars, **extra},
        umask=umask,
    )
    env.spawned.append(proc)
    return proc


# -- 1. the same command, in the relay and in its own process -------------------------------------


def test_a_send_in_the_relay_and_in_its_own_process_look_the_same(env: Env, relay: Relay) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    ways = {
        "relay": ([], {}),
        "--no-relay": (["--no-relay"], {}),
        "CLAWRELAY_RELAY=off": ([], {"CLAWRELAY_RELAY": "off"}),
    }
    results = {}
    for way, (root, extra) in ways.items():
        json_run = env.run(*root, "send", "xiaom", "the same words", "--json", **extra)
        text_run = env.run(*root, "send", "xiaom", "the same words", **extra)
        results[way] = (json_run, text_run)
        assert (json_run.code, text_run.code) == (0, 0), (way, json_run.err, text_run.err)

    # where each ran: the relay's process tree, or the client's own
    seen = runs(out)
    assert [r["body"] for r in seen] == ["the same words"] * 6
    assert [relay.pid in r["ancestors"] for r in seen] == [True, True, False, False, False, False]

    # what the user sees: the same output, exit status and journal
    (ref_json, ref_text) = results["relay"]
    for way, (json_run, text_run) in results.items():
        assert shape(json_run.json()) == shape(ref_json.json()), way
        assert text_shape(text_run.out) == text_shape(ref_text.out), way
        assert text_shape(json_run.err + text_run.err) == text_shape(ref_json.err + ref_text.err), way
    records = journal(env)
    assert len(records) == 6
    assert len({json.dumps(shape(r), sort_keys=True) for r in records}) == 1, records
    assert [r["status"] for r in records] == ["delivered"] * 6
    relay.assert_clean_stop()


def test_a_relay_running_other_code_declines_and_the_command_runs_here(env: Env, relay: Relay) -> None:
    """After an upgrade, a relay started before it still runs the old code: a client of another
    version is declined (and runs the command itself), one of the same version is accepted."""
    import clawrelay

    request = {
        "op": "run",
        "v": 1,
        "argv": ["status", "--json"],
        "cwd": str(env.tmp),
        "env": dict(env.vars),
        "streams": {k: {"encoding": "utf-8", "errors": "strict"} for k in ("0", "1", "2")},
        "umask": 0o022,
    }
    answers = {}
    for version in ("0.0.0-older", clawrelay.__version__):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(relay.socket)
            s.sendall(_frame({**request, "clawrelay": version}))
            answers[version] = _read_frame(s)
    assert answers["0.0.0-older"] is not None and answers["0.0.0-older"]["op"] == "declined"
    assert clawrelay.__version__ in answers["0.0.0-older"]["why"]
    assert answers[clawrelay.__version__] is not None and answers[clawrelay.__version__]["op"] == "accepted"
    # and a real client of this version is served (the relay's pid is in status's answer)
    r = env.run("status", "--json")
    assert r.json()["relay"]["pid"] == relay.pid
    relay.assert_clean_stop()


# -- 2. the client's stdin, environment and working folder -----------------------------------------


def test_the_command_gets_the_clients_stdin_environment_and_folder(env: Env) -> None:
    relay_cwd = env.tmp / "relay-cwd"  # the relay's own folder: nothing of the client's there
    relay_cwd.mkdir()
    relay = Relay(env, cwd=relay_cwd, CLAWRELAY_PROBE="from-the-relay")
    out = env.tmp / "probe.jsonl"
    conf = routes(env, probe(out), path=env.tmp / "conf" / "alt.yaml")  # no routes.yaml anywhere
    rel = str(conf.relative_to(env.tmp))

    message = "".join(f"line {i}: 小m ünïcödé {'x' * (i % 70)}\n" for i in range(4000))  # ~200 KB
    r = env.run("send", "--config", rel, "xiaom", "--json", input=message, CLAWRELAY_PROBE="from-the-client")
    assert r.code == 0, r.err
    assert r.json()["status"] == "delivered"
    r = env.run("--config", rel, "send", "xiaom", "no variable here")  # the root's --config too
    assert r.code == 0, r.err

    first, second = runs(out)
    assert relay.pid in first["ancestors"] and relay.pid in second["ancestors"]
    assert first["body"] == message  # all of stdin, streamed through
    assert first["probe"] == "from-the-client"
    assert second["probe"] is None  # the relay's own environment does not leak into a command
    assert first["cwd"] == second["cwd"] == str(env.tmp)

    # exec on the local host: in the client's folder, with the client's environment
    r = env.run("exec", "--config", rel, "here", "--", "pwd")
    assert (r.code, r.out, r.err) == (0, f"{env.tmp}\n", "")
    r = env.run(
        "exec",
        "--config",
        rel,
        "here",
        "--",
        "sh",
        "-c",
        'printf %s "$CLAWRELAY_PROBE"',
        CLAWRELAY_PROBE="mine",
    )
    assert (r.code, r.out) == (0, "mine"), r.err
    r = env.run("exec", "--config", rel, "here", "--", *program("relay_probe.py", out))
    assert r.code == 0, r.err
    assert runs(out)[-1]["cwd"] == str(env.tmp) and relay.pid in runs(out)[-1]["ancestors"]
    # a relative --config the relay would resolve against its own folder is the client's, not its
    assert not (relay_cwd / "conf").exists()
    relay.assert_clean_stop()


def test_a_relative_state_dir_is_the_clients_not_the_relays(env: Env) -> None:
    """CLAWRELAY_HOME=state in the client's folder: the relay serving that state dir journals there."""
    relay_cwd = env.tmp / "relay-cwd"
    relay_cwd.mkdir()
    relay = Relay(env, cwd=relay_cwd)  # CLAWRELAY_HOME is absolute in the relay's environment
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    rel_home = os.path.relpath(env.home, env.tmp)
    r = env.run("send", "xiaom", "where is my journal", "--json", CLAWRELAY_HOME=rel_home)
    assert r.code == 0, r.err
    (seen,) = runs(out)
    assert relay.pid in seen["ancestors"]  # the client found the relay of its state dir
    elsewhere = relay_cwd / rel_home / "journal.db"
    assert not elsewhere.exists(), f"the message went to {elsewhere}, a state dir in the relay's folder"
    assert [m["id"] for m in journal(env)] == [r.json()["id"]]  # the client's state dir has it
    relay.assert_clean_stop()


def test_programs_get_the_clients_umask(env: Env, relay: Relay) -> None:
    """A file made by `exec` or a command step has the permissions the user's umask says, as
    when the command runs in its own process (the relay runs with 022)."""
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    seen = {}
    for way in ("relay", "--no-relay"):
        root = [] if way == "relay" else ["--no-relay"]
        send = console(env, *root, "send", "xiaom", f"sent {way}", umask=0o077)
        exe = console(env, *root, "exec", "here", "--", "sh", "-c", "umask", umask=0o077)
        stdout, stderr = exe.communicate(timeout=30)
        assert exe.returncode == 0, stderr
        assert send.wait(30) == 0, send.communicate()
        seen[way] = (stdout.strip(), oct(runs(out)[-1]["umask"]))
        assert (relay.pid in runs(out)[-1]["ancestors"]) is (way == "relay")
    assert seen["--no-relay"] == ("0077", "0o77")
    assert seen["relay"] == seen["--no-relay"]


def test_commands_at_once_keep_their_own_output_status_environment_and_folder(env: Env, relay: Relay) -> None:
    out = env.tmp / "probe.jsonl"
    text = header(env.workspace) + "targets:\n"
    for name, code in (("xiaom", 0), ("broken", 3)):
        text += f"  {name}:\n    host: here\n    chain:\n      - {probe(out, seconds=2, code=code)}\n"
    conf = env.routes(text)
    clients = {}
    for i in range(6):
        folder = env.tmp / f"client{i}"
        folder.mkdir()
        target = "xiaom" if i % 2 == 0 else "broken"
        clients[i] = console(
            env,
            "send",
            "--config",
            str(conf),
            target,
            f"message {i}",
            "--json",
            cwd=folder,
            CLAWRELAY_PROBE=f"client {i}",
        )
    done = {i: (p.communicate(timeout=60), p.returncode) for i, p in clients.items()}
    seen = {r["body"]: r for r in runs(out)}
    assert len(seen) == 6
    for i, ((stdout, stderr), code) in done.items():
        doc = json.loads(stdout)
        assert doc["target"] == ("xiaom" if i % 2 == 0 else "broken"), (i, doc)
        assert (code, doc["status"]) == ((0, "delivered") if i % 2 == 0 else (1, "failed")), (i, stderr)
        probe_run = seen[f"message {i}"]
        assert probe_run["probe"] == f"client {i}" and probe_run["cwd"] == str(env.tmp / f"client{i}")
        assert relay.pid in probe_run["ancestors"]
        others = [f"message {j}" for j in done if j != i]
        assert not any(o in stdout + stderr for o in others), (i, stdout, stderr)  # its own output only
    # they ran side by side (one after another, the programs' starts would span 10 s)
    starts = sorted(r["time"] for r in seen.values())
    assert starts[-1] - starts[0] < 6, starts
    records = {m["body"]: m for m in journal(env)}
    assert {b: (m["id"], m["target"]) for b, m in records.items()} == {
        f"message {i}": (json.loads(s)["id"], "xiaom" if i % 2 == 0 else "broken")
        for i, ((s, _), _) in done.items()
    }


# -- 3. no relay answering: the command runs in its own process, at once ---------------------------


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[float, float | None, str, str]:
    """Wait for a client started with `console`: the seconds until it exited, until its stdout and
    stderr were closed (None: still open `timeout` s after it exited), and what they carried."""
    import selectors

    t0 = time.monotonic()
    assert proc.stdout is not None and proc.stderr is not None
    fds = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
    sel = selectors.DefaultSelector()
    for fd in fds:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    exited: float | None = None
    end = t0 + timeout
    while sel.get_map() and time.monotonic() < end:
        if exited is None and proc.poll() is not None:
            exited, end = time.monotonic() - t0, time.monotonic() + timeout
        for key, _ in sel.select(0.05):
            chunk = os.read(key.fd, 65536)
            if chunk:
                fds[key.fd] += chunk
            else:
                sel.unregister(key.fd)
    closed = None if sel.get_map() else time.monotonic() - t0
    sel.close()
    if exited is None:
        proc.wait(timeout)
        exited = time.monotonic() - t0
    out, err = (b.decode() for b in fds.values())
    return exited, closed, out, err


@pytest.mark.parametrize("how", ["bound-and-closed", "relay-killed", "relay-stopped"])
def test_a_stale_or_silent_socket_costs_nothing_and_runs_the_command_here(env: Env, how: str) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    relay: Relay | None = None
    path = socket_path(env.home)
    if how == "bound-and-closed":
        env.home.mkdir(mode=0o700, exist_ok=True)
        if os.path.dirname(path) == short_dir():
            os.makedirs(short_dir(), mode=0o700, exist_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
    else:
        relay = Relay(env)
        if how == "relay-killed":
            relay.kill()
        else:
            os.kill(relay.pid, signal.SIGSTOP)  # alive, holding its socket, answering nothing
    assert os.path.exists(path)
    try:
        client = console(env, "send", "xiaom", "anyone there?", "--json")
        exited, closed, stdout, stderr = finish(client, timeout=5)
    finally:
        if how == "relay-stopped":
            assert relay is not None
            os.kill(relay.pid, signal.SIGCONT)
    assert client.returncode == 0, (stdout, stderr)
    if how == "relay-stopped":  # it waited for the relay's answer, and no longer
        assert HELLO_TIMEOUT - 0.2 <= exited < HELLO_TIMEOUT + 10, exited
    else:
        assert exited < HELLO_TIMEOUT, f"{exited:.2f}s: it waited for a relay that was not there"
    # `x=$(clawrelay send ...)` and `clawrelay send ... | tee` wait for the end of the output, not
    # for the process: nothing may keep the client's stdout open once it has exited
    assert closed is not None and closed - exited < 2, (
        f"the client exited after {exited:.1f}s, but its stdout and stderr were still open "
        f"{'5' if closed is None else f'{closed - exited:.1f}'}s later: someone else holds them"
    )
    assert json.loads(stdout)["status"] == "delivered"
    (seen,) = runs(out)
    assert relay is None or relay.pid not in seen["ancestors"]
    assert [(m["status"], m["body"]) for m in journal(env)] == [("delivered", "anyone there?")]

    if how == "relay-stopped":  # woken, it finds the request it was too late for: not run twice
        assert relay is not None
        time.sleep(1.0)
        assert len(runs(out)) == 1 and len(journal(env)) == 1
        assert env.run("send", "xiaom", "after the pause").code == 0
        assert relay.pid in runs(out)[-1]["ancestors"]
        relay.assert_clean_stop()
    if how == "relay-killed":  # a new relay takes the state dir over, stale socket and all
        fresh = Relay(env)
        assert env.run("send", "xiaom", "to the new one").code == 0
        assert fresh.pid in runs(out)[-1]["ancestors"]
        fresh.assert_clean_stop()


# -- 4. one relay per state dir -------------------------------------------------------------------


def test_a_second_relay_for_the_same_state_dir_refuses_in_one_line(env: Env, relay: Relay) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    r = env.run("serve", "--interval", "1h", timeout=30)
    assert r.code == 1, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert f"pid {relay.pid}" in lines[0] and "relay" in lines[0]
    # the first one is untouched: same socket, still serving
    assert ask_stat(str(env.home)).get("pid") == relay.pid
    assert env.run("send", "xiaom", "still here").code == 0
    assert relay.pid in runs(out)[-1]["ancestors"]


# -- 5. the relay killed under a command ----------------------------------------------------------


def test_a_relay_killed_mid_send_leaves_the_outcome_unknown_and_the_journal_true(env: Env) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out, seconds=60))
    relay = Relay(env)
    client = console(env, "send", "xiaom", "in flight", "--json")
    wait_for(lambda: len(runs(out)) == 1, 30)
    (seen,) = runs(out)
    assert relay.pid in seen["ancestors"]
    relay.kill()

    stdout, stderr = client.communicate(timeout=30)
    assert client.returncode == 4, (stdout, stderr)
    doc = json.loads(stdout)
    assert doc["error"]["reason"] == "relay_lost"
    assert "outcome is unknown" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    wait_for(lambda: not alive(seen["pid"]), 10)  # the program went with the relay that ran it

    # the same kill -9 of a sender running in its own process, for reference
    other = console(env, "send", "xiaom", "in flight", "--json")
    wait_for(lambda: len(runs(out)) == 2, 30)
    other.kill()
    other.communicate(timeout=30)
    wait_for(lambda: not alive(runs(out)[1]["pid"]), 10)

    relayed, own = journal(env)  # the next command (in its own process) recovers both
    assert relayed["body"] == own["body"] == "in flight"
    assert attempts(relayed) == attempts(own) == [("command", "ambiguous", "interrupted", False)]
    assert relayed["status"] == own["status"] == "ambiguous"
    assert relayed["queued"] is own["queued"] is False
    assert "the sender died while command ran" in relayed["attempts"][0]["detail"]
    assert relayed["attempts"][0]["detail"] == own["attempts"][0]["detail"]
    listed = {m["id"]: m for m in env.run("outbox", "list", "--json").json()}
    assert listed[relayed["id"]]["in_flight"] is False


# -- 6. SIGTERM: in-flight attempts finish, nothing new starts -------------------------------------


def test_sigterm_lets_the_send_in_flight_finish_and_the_client_gets_its_outcome(env: Env) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out, seconds=2))
    relay = Relay(env)
    client = console(env, "send", "xiaom", "finish me", "--json")
    wait_for(lambda: len(runs(out)) == 1, 30)
    relay.proc.terminate()

    # it takes no new command meanwhile: its socket goes, and the next command runs here
    wait_for(lambda: not os.path.exists(relay.socket), 10)
    assert relay.proc.poll() is None  # still finishing the send in flight
    r = env.run("send", "xiaom", "after the stop", "--json")
    assert r.code == 0 and r.json()["status"] == "delivered", r.err
    assert relay.pid not in runs(out)[1]["ancestors"]

    stdout, stderr = client.communicate(timeout=30)
    assert client.returncode == 0, (stdout, stderr)
    doc = json.loads(stdout)
    assert (doc["status"], attempts(doc)) == ("delivered", [("command", "delivered", None, False)])
    assert relay.pid in runs(out)[0]["ancestors"]
    assert relay.proc.wait(30) == 0
    assert "Traceback" not in relay.err(), relay.err()
    assert relay.out().strip().splitlines()[-1] == "stopped"
    assert [m["status"] for m in journal(env)] == ["delivered", "delivered"]


def test_sigterm_starts_no_retry_and_no_next_step(env: Env) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out, seconds=2, code=75, retries=3), "memory_file: {}")
    relay = Relay(env)
    client = console(env, "send", "xiaom", "stop after this try", "--json")
    wait_for(lambda: len(runs(out)) == 1, 30)
    relay.proc.terminate()
    stdout, stderr = client.communicate(timeout=30)
    assert relay.proc.wait(30) == 0  # (one SIGTERM: see the test above for more)
    assert "Traceback" not in relay.err(), relay.err()
    assert client.returncode == 1, (stdout, stderr)
    doc = json.loads(stdout)
    assert doc["status"] == "failed" and doc["queued"] is True
    assert attempts(doc) == [("command", "failed", "tempfail", True)]  # the try in flight, no more
    assert len(runs(out)) == 1
    assert not (env.workspace / "memory").exists()  # the next step was not started
    (record,) = journal(env)
    assert (record["status"], attempts(record)) == ("queued", attempts(doc))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_asked_again_and_again_to_stop_it_still_stops_cleanly(env: Env, sig: int) -> None:
    """An impatient `kill` after `systemctl stop`, Ctrl-C pressed twice on `clawrelay serve` in a
    terminal: the relay is stopping already, and ends as it would have (exit 0, no traceback)."""
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out, seconds=1))
    relay = Relay(env)
    client = console(env, "send", "xiaom", "finish me", "--json")
    wait_for(lambda: len(runs(out)) == 1, 30)
    end = time.monotonic() + 30
    while relay.proc.poll() is None and time.monotonic() < end:
        with contextlib.suppress(ProcessLookupError):
            os.kill(relay.pid, sig)
        time.sleep(0.005)
    stdout, stderr = client.communicate(timeout=30)
    assert client.returncode == 0 and json.loads(stdout)["status"] == "delivered", (stdout, stderr)
    code = relay.proc.wait(30)
    assert code == 0, f"the relay ended with {code}: {relay.err()[-3000:]}"
    assert not _bugs_in(relay.err()) and "KeyboardInterrupt" not in relay.err(), relay.err()[-3000:]
    assert relay.out().strip().splitlines()[-1] == "stopped"


# -- 7. Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["send", "exec"])
def test_ctrl_c_ends_a_command_as_it_does_in_its_own_process(env: Env, relay: Relay, command: str) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out, seconds=60))
    outcomes = {}
    for way, extra in (("relay", {}), ("own process", {"CLAWRELAY_RELAY": "off"})):
        n = len(runs(out))
        if command == "send":
            args = ["send", "xiaom", f"interrupted ({way})", "--json"]
        else:
            args = ["exec", "here", "--json", "--", *program("relay_probe.py", out, 60)]
        client = console(env, *args, **extra)
        wait_for(lambda: len(runs(out)) == n + 1, 30)  # noqa: B023
        seen = runs(out)[-1]
        assert (relay.pid in seen["ancestors"]) is (way == "relay")
        client.send_signal(signal.SIGINT)
        stdout, stderr = client.communicate(timeout=30)
        wait_for(lambda: not alive(seen["pid"]), 10)  # noqa: B023  # its program is stopped too
        # (not the last line: in its own process, asyncio may add an "Exception ignored" after it)
        outcomes[way] = (
            client.returncode,
            json.loads(stdout),
            "clawrelay: interrupted" in stderr.splitlines(),
        )
        if way == "relay":
            assert "Traceback" not in stderr, stderr

    assert outcomes["relay"] == outcomes["own process"]
    code, doc, said = outcomes["relay"]
    assert code == 130 and doc["error"]["reason"] == "interrupted" and said
    relayed, own = journal(env)
    assert (relayed["kind"], relayed["status"], relayed["queued"], attempts(relayed)) == (
        own["kind"],
        own["status"],
        own["queued"],
        attempts(own),
    )
    assert [a["detail"] for a in relayed["attempts"]] == [a["detail"] for a in own["attempts"]]
    # the relay itself was not interrupted: it still serves
    assert relay.proc.poll() is None
    wait_for(lambda: ask_stat(str(env.home)).get("commands") == 0, 10)
    routes(env, probe(out))
    assert env.run("send", "xiaom", "next").code == 0
    assert relay.pid in runs(out)[-1]["ancestors"]


def test_ctrl_c_while_the_relay_reads_the_clients_stdin(env: Env, relay: Relay) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    assert CLAWRELAY
    client = subprocess.Popen(
        [CLAWRELAY, "send", "xiaom", "--json"],
        stdin=subprocess.PIPE,  # held open: the message never ends
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env.tmp,
        env=env.vars,
    )
    env.spawned.append(client)
    assert client.stdin is not None
    client.stdin.write("the start of a message that ")
    client.stdin.flush()
    wait_for(lambda: ask_stat(str(env.home)).get("commands") == 1, 30)
    client.send_signal(signal.SIGINT)
    # stdin stays open until the client is gone: its end would race the interrupt to the relay
    client.wait(30)
    stdout, stderr = client.communicate(timeout=30)
    assert client.returncode == 130, (stdout, stderr)
    assert json.loads(stdout)["error"]["reason"] == "interrupted"
    assert stderr.strip().splitlines()[-1] == "clawrelay: interrupted"
    assert runs(out) == [] and journal(env) == []
    wait_for(lambda: ask_stat(str(env.home)).get("commands") == 0, 10)


# -- 8. another local user ------------------------------------------------------------------------


def _as_nobody(path: str, frame: bytes | None) -> dict[str, Any]:
    """Connect to `path` as the user nobody (a forked child that drops root) and, when `frame` is
    given, send it with its stdio as a client would: what happened, as the child saw it."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        result: dict[str, Any] = {}
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(path)
            except OSError as e:
                result = {"connect": e.errno}
            else:
                result = {"connect": 0, "frames": []}
                if frame is not None:
                    null = os.open(os.devnull, os.O_RDWR)
                    with contextlib.suppress(OSError):
                        socket.send_fds(s, [frame], [null, null, null])
                        s.sendall(_frame({"op": "go"}))
                    result["frames"] = _read_all(s)
        except BaseException as e:  # anything: said to the parent, never raised here
            result = {"crash": repr(e)}
        finally:
            with contextlib.suppress(BaseException):
                os.write(w, json.dumps(result).encode())
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to connect as another user (nobody)")
def test_another_local_user_can_neither_connect_nor_run_a_command(env: Env) -> None:
    import shutil
    import tempfile

    # a state dir that nobody may pass through, so that only the socket's own mode keeps them out
    base = Path(tempfile.mkdtemp(prefix="clawrelay-t-", dir="/tmp"))
    try:
        base.chmod(0o711)
        home = base / "state"
        home.mkdir(mode=0o711)
        home.chmod(0o711)
        env.vars["CLAWRELAY_HOME"] = str(home)
        env.home = home
        out = env.tmp / "probe.jsonl"
        routes(env, probe(out))
        relay = Relay(env)
        path = relay.socket
        assert os.path.dirname(path) == str(home), "the socket should be in the state dir"
        assert os.stat(path).st_mode & 0o777 == 0o600
        run = {
            "op": "run",
            "v": 1,
            "argv": ["send", "xiaom", "from nobody"],
            "cwd": str(env.tmp),
            "env": env.vars,
            "streams": {k: {"encoding": "utf-8", "errors": "strict"} for k in "012"},
        }
        seen = _as_nobody(path, _frame(run))
        assert seen == {"connect": errno.EACCES}, seen  # the socket is 0600

        os.chmod(path, 0o666)  # even where the file would let them in, the relay does not
        seen = _as_nobody(path, _frame(run))
        assert seen["connect"] == 0, seen
        assert [(f.get("op"), f.get("reason")) for f in seen["frames"]] == [("error", "forbidden")], seen
        time.sleep(0.5)
        assert runs(out) == [] and journal(env) == []
        assert env.run("send", "xiaom", "from root").code == 0  # its own user still gets served
        assert relay.pid in runs(out)[-1]["ancestors"]
        relay.assert_clean_stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- 9. hostile input on the socket ---------------------------------------------------------------


def _frame(obj: Any) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def _read_frame(s: socket.socket) -> dict[str, Any] | None:
    """The relay's next frame; None when it closed the connection instead."""
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        try:
            chunk = s.recv(4 if len(buf) < 4 else 4 + struct.unpack(">I", buf[:4])[0] - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            assert buf == b"", f"the relay closed inside a frame: {buf!r}"
            return None
        buf += chunk
    frame = json.loads(buf[4:])
    assert isinstance(frame, dict), frame
    return frame


def _read_all(s: socket.socket) -> list[dict[str, Any]]:
    """Every frame the relay sends until it closes; a timeout (a hang) raises."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
    frames = []
    while len(buf) >= 4:
        (n,) = struct.unpack(">I", buf[:4])
        assert n <= len(buf) - 4, f"a truncated frame from the relay: {buf!r}"
        frames.append(json.loads(buf[4 : 4 + n]))
        buf = buf[4 + n :]
    assert buf == b"", f"bytes after the last frame: {buf!r}"
    return frames


def _open_fds(pid: int) -> dict[int, str]:
    """The descriptors a process holds, and what each is."""
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return out


def _bugs_in(log: str) -> list[str]:
    """The lines of a relay's stderr that say it hit a bug (a traceback, or its catch-all)."""
    return [line for line in log.splitlines() if "Traceback" in line or " ERROR: " in line]


def test_hostile_input_on_the_socket_never_hangs_or_harms_the_relay(env: Env, relay: Relay) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    assert env.run("send", "xiaom", "warm up").code == 0  # what the relay opens once, opened
    wait_for(lambda: ask_stat(str(env.home)).get("commands") == 0, 10)
    fds_before = len(_open_fds(relay.pid))

    stream = {"encoding": "utf-8", "errors": "strict"}
    good = {
        "op": "run",
        "v": 1,
        "argv": ["send", "nosuchtarget", "fuzz"],  # a real command, which journals nothing
        "cwd": str(env.tmp),
        "env": env.vars,
        "streams": {"0": stream, "1": stream, "2": stream},
    }
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    )
    encodings = st.sampled_from(
        ["utf-8", "latin-1", "utf-16", "ascii", "rot13", "base64", "hex", "zlib", "nope", "", "utf-8\0"]
    )
    errors = st.sampled_from(["strict", "surrogateescape", "replace", "bogus", ""])
    argvs = st.just(good["argv"]) | st.sampled_from(
        [
            ["send", "nosuchtarget", "fuzz"],
            ["send", "--help"],
            ["outbox", "flush", "--watch"],
            ["outbox", "list"],
            ["serve"],
            ["--no-relay", "send", "nosuchtarget", "x"],
            [],
            ["send", "nosuch\0target", "x"],
            ["send", "\udcff", "x"],
        ]
    )

    @st.composite
    def run_frames(draw: Any) -> bytes:
        frame = json.loads(json.dumps(good))
        frame["argv"] = draw(argvs)
        for key in draw(st.lists(st.sampled_from(sorted(frame)), max_size=2, unique=True)):
            choice = draw(st.integers(0, 2))
            if choice == 0:
                frame.pop(key)
            else:
                frame[key] = draw(json_values)
        if isinstance(frame.get("streams"), dict) and draw(st.booleans()):
            k = draw(st.sampled_from(["0", "1", "2"]))
            frame["streams"][k] = {"encoding": draw(encodings), "errors": draw(errors)}
        if draw(st.booleans()) and isinstance(frame.get("env"), dict):
            frame["env"] = {**frame["env"], draw(st.sampled_from(["", "A=B", "X\0"])): "v"}
        data = json.dumps(frame, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        return struct.pack(">I", len(data)) + data

    @st.composite
    def odd_frames(draw: Any) -> bytes:
        kind = draw(st.integers(0, 4))
        if kind == 0:  # random bytes
            return bytes(draw(st.binary(min_size=1, max_size=300)))
        if kind == 1:  # a length header out of all proportion, or lying
            n = draw(st.sampled_from([0, 1, 5, 2**22, 2**22 + 1, 2**31, 2**32 - 1]))
            return struct.pack(">I", n) + draw(st.binary(max_size=50))
        if kind == 2:  # JSON, but not an object with an op
            data = json.dumps(draw(json_values)).encode()
            return struct.pack(">I", len(data)) + data
        if kind == 3:  # an object with another op, or an op of another type
            data = json.dumps({"op": draw(st.sampled_from(["go", "signal", "exit", "Run", "", 1, None]))})
            return struct.pack(">I", len(data)) + data.encode()
        body = draw(st.sampled_from([b'{"op":"run","argv":["\xff"]}', b'{"op":"\xed\xa0\x80"}', b"[" * 5000]))
        return struct.pack(">I", len(body)) + body

    conversations = st.tuples(
        st.one_of(run_frames(), odd_frames()),
        st.sampled_from([3, 3, 0, 1, 5]),  # descriptors passed with the first bytes
        st.sampled_from(["go", "go", "go+fds", "read", "drop-mid-frame", "drop-after-accepted"]),
    )
    logged = [len(relay.err())]

    def converse(payload: bytes, nfds: int, then: str) -> None:
        """One connection: `payload` (with `nfds` descriptors); then, as a client does, `go` once
        the relay said `accepted` (the descriptors with it for `go+fds`), or hang up halfway."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)  # far past the relay's own handshake limit: a timeout here is a hang
        null = os.open(os.devnull, os.O_RDWR)
        frames: list[dict[str, Any]] = []
        try:
            s.connect(relay.socket)
            first = payload if then != "drop-mid-frame" else payload[: max(1, len(payload) // 2)]
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if nfds:
                    socket.send_fds(s, [first], [null] * nfds)
                else:
                    s.sendall(first)
            if then == "drop-mid-frame":
                return
            if then != "read":
                answer = _read_frame(s)
                frames += [answer] if answer is not None else []
                if answer is not None and answer.get("op") == "accepted":
                    if then == "drop-after-accepted":
                        return
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        socket.send_fds(s, [_frame({"op": "go"})], [null] * (3 if then == "go+fds" else 0))
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_WR)
            frames += _read_all(s)
            ops = [f.get("op") for f in frames]
            allowed = [[], ["error"], ["declined"], ["stat"], ["accepted", "exit"], ["accepted", "error"]]
            if then == "read":  # never told to go: nothing to end
                allowed.append(["accepted"])
            # (told to go, a relay that ends without an exit status leaves a real client saying
            # "outcome unknown", relay_lost, for a command that never ran)
            assert ops in allowed, frames
            if ops[-1:] == ["error"]:
                assert isinstance(frames[-1].get("reason"), str) and frames[-1]["reason"], frames
            if ops[-1:] == ["exit"]:
                assert isinstance(frames[-1].get("code"), int), frames
            if ops == ["stat"]:
                assert frames[0]["pid"] == relay.pid, frames
        finally:
            os.close(null)
            s.close()
            time.sleep(0.005)
            assert relay.proc.poll() is None, f"the relay died: {relay.err()[-3000:]}"
            new = relay.err()[logged[0] :]
            logged[0] += len(new)
            assert not _bugs_in(new), new[-4000:]

    settings = hypothesis.settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    ok = {"encoding": "utf-8", "errors": "strict"}
    hostile_streams = [  # what only a hostile or broken client sends: each must be refused in words
        {"0": ok, "1": {"encoding": "rot13", "errors": "strict"}, "2": ok},  # a codec, not a text encoding
        {"0": ok, "1": ok, "2": {"encoding": "zlib", "errors": "strict"}},
        {"0": {"encoding": "rot13", "errors": "strict"}, "1": ok, "2": ok},  # stdin's is checked too
        {"0": {"encoding": "nope", "errors": "bogus"}, "1": ok, "2": ok},
        {"0": "utf-8", "1": ok, "2": ok},
    ]
    explicit = [
        (_frame({**good, "streams": st_}), n, then)
        for st_ in hostile_streams
        for n, then in ((3, "go"), (0, "go+fds"))
    ]
    explicit += [
        (_frame(good), 3, "go"),  # a well-formed run, as the client sends it today
        (_frame(good), 0, "go+fds"),  # and with the descriptors after `accepted`
        (_frame(good), 5, "read"),
        (_frame(good), 0, "read"),
        (_frame(good), 3, "drop-after-accepted"),
        (_frame(good), 3, "drop-mid-frame"),
        (struct.pack(">I", 2**31) + b"{}", 0, "read"),
        (_frame({"op": "stat"}), 3, "read"),
        (_frame({"op": "go"}), 3, "read"),
    ]
    fuzz = hypothesis.given(conversations)(lambda conv: converse(*conv))
    for example in explicit:
        fuzz = hypothesis.example(example)(fuzz)
    settings(fuzz)()

    # afterwards: the same relay runs a real send as ever, and holds no descriptor it was given
    wait_for(lambda: ask_stat(str(env.home)).get("commands") == 0, 10)
    r = env.run("send", "xiaom", "after the storm", "--json")
    assert r.code == 0 and r.json()["status"] == "delivered", r.err
    assert relay.pid in runs(out)[-1]["ancestors"]
    assert [m["body"] for m in journal(env)] == ["warm up", "after the storm"]  # nothing else ran
    with contextlib.suppress(AssertionError):
        wait_for(lambda: len(_open_fds(relay.pid)) <= fds_before + 2, 10)
    held = _open_fds(relay.pid)
    assert len(held) <= fds_before + 2, (
        f"{len(held)} descriptors, {fds_before} before: {sorted(held.values())}"
    )
    relay.assert_clean_stop()


# -- 10. status -----------------------------------------------------------------------------------


def test_status_says_whether_a_relay_runs(env: Env) -> None:
    out = env.tmp / "probe.jsonl"
    routes(env, probe(out))
    r = env.run("status", "--json")
    assert r.code == 0, r.err
    assert r.json()["relay"] == {"running": False}
    assert "relay: not running" in env.run("status").out

    relay = Relay(env)
    for root in ([], ["--no-relay"]):  # asked inside the relay, and from a process of its own
        r = env.run(*root, "status", "--json")
        assert r.code == 0, r.err
        doc = r.json()["relay"]
        assert doc["running"] is True and doc["pid"] == relay.pid, doc
        assert doc["socket"] == relay.socket and isinstance(doc["uptime_s"], int | float)
        assert doc["hosts"] == {} or set(doc["hosts"]) <= {"here"}
        assert doc["gateways"] == {}
    assert f"relay: running (pid {relay.pid}" in env.run("status").out
    relay.assert_clean_stop()
    assert env.run("status", "--json").json()["relay"] == {"running": False}


# -- 11. routes.yaml edited while the relay runs --------------------------------------------------


@pytest.mark.parametrize("edit", ["rewritten in place, same size", "replaced by a rename"])
def test_the_relay_follows_edits_of_the_routes(env: Env, relay: Relay, edit: str) -> None:
    spaces = {v: env.tmp / f"ws-{v}" for v in "AB"}
    outs = {v: env.tmp / f"probe-{v}.jsonl" for v in "AB"}
    texts = {}
    for v in "AB":
        spaces[v].mkdir()
        # its first step fails (after saying where it ran), so memory_file delivers
        texts[v] = routes(env, probe(outs[v], code=3), "memory_file: {}", workspace=spaces[v]).read_text()
    assert len(texts["A"]) == len(texts["B"])
    path = env.tmp / "routes.yaml"

    def write(v: str) -> None:
        if edit == "replaced by a rename":
            tmp = env.tmp / "routes.yaml.new"
            tmp.write_text(texts[v])
            tmp.replace(path)
        else:
            with path.open("r+") as f:
                f.write(texts[v])
        assert path.read_text() == texts[v]

    for i, v in enumerate("ABA"):
        write(v)
        r = env.run("send", "xiaom", f"message {i} for {v}", "--json")
        assert r.code == 0, r.err
        assert r.json()["via"] == "memory_file"
        assert runs(outs[v])[-1]["body"] == f"message {i} for {v}"
        assert relay.pid in runs(outs[v])[-1]["ancestors"]
    notes = {v: "".join(p.read_text() for p in (spaces[v] / "memory").glob("*.md")) for v in "AB"}
    assert "message 0 for A" in notes["A"] and "message 2 for A" in notes["A"]
    assert "message 1 for B" in notes["B"]
    assert "for B" not in notes["A"] and "for A" not in notes["B"]
    assert len(runs(outs["A"])) == 2 and len(runs(outs["B"])) == 1
