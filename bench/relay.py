#!/usr/bin/env python3
"""The resident relay (`clawrelay serve`): forwarded commands, outbox drain and memory, in one run.

Starts a real OpenClaw gateway with a paired node host (tests/peer.py) and a real OpenSSH server
(tests/sshd.py), all on loopback, then `clawrelay serve --interval 1h` on a fresh state dir (its
own flusher makes its pass at start and keeps out of the way), and measures, against floors
taken in the same run (bench/coldstart.py's: raw_health.py, raw_node_invoke.py, `ssh HOST true`):

  latency: N interleaved rounds of each command forwarded to the relay, the same command with
    `--no-relay` (in its own process) and its floor; median and p90 wall time, start to exit:
      clawrelay send T x --via sessions_send  (no wait_reply) / raw_health      <= 30 ms, <= 0.3x
      clawrelay call GW health                                / raw_health      <= 0.4x
      clawrelay exec HOST --via ssh -- true                   / ssh HOST true   <= 0.25x
      clawrelay exec HOST --via node -- true                  / raw_node_invoke <= 0.5x
    To tell where the time goes: `python -c pass`, the client's imports alone, the same four
    commands forwarded from one warm Python process (`clawrelay.relay.client.forward` in a loop:
    the relay's own time, no interpreter start), and warm floors that no client can beat: the
    gateway's ack of an `agent` request on an open connection (bench/raw_agent.py) and `ssh HOST
    true` over an OpenSSH ControlMaster (a new session on a warm connection).
  memory: the relay's VmRSS (/proc/PID/status) after 1,000 forwarded sends and every 1,000 up to
    10,000 (memory_file to a local host, so the fake model is not flooded), its growth per 1,000,
    threads and descriptors, and again after 35 s idle (the relay tidies every 30 s). Goals:
    <= 60 MB after 1,000, no growth (within 2 MB over the 9,000 after).
  drain: 1,000 messages queued for a target whose only step is sessions_send to a gateway that
    is a closed port (each one a real `clawrelay send`, forwarded to the relay, failed and
    `queued` in the journal); then the routes point that gateway at the real one and `clawrelay
    outbox flush --now` runs, forwarded to the relay, timed; afterwards the journal must say
    1,000 delivered, each with exactly one delivered attempt. Goal >= 200 messages/s. The floor:
    bench/raw_agent.py sending 100 `agent` requests one after another on one connection.

Two more things put those numbers in context: the same 1,000 messages flushed to a stub gateway
(this file with --stub-gateway: it accepts each `agent` request at once and runs nothing), which
shows the relay's own ceiling; and, from the journal, how much of each message's time went to
waiting for the gateway's ack and how much was the relay's.

The gateway runs an agent turn (fake model) for every message it accepts, which keeps it busy
for a second or two: before each phase the bench waits (at most 2 min) for the gateway's
processes to go quiet, before each latency case that sends a message likewise (at most 15 s),
and it restarts the gateway between the drain's floor and the drain, so that one case's turns do
not slow the next.

    .venv/bin/python bench/relay.py [--runs 15] [--json] [--quick] [--profile]   (~20 min)

--quick: a smoke run (~2 min): 3 rounds, RSS after 100 and 300 sends, 30 messages drained.
--json: the results as one JSON document instead of the tables.
--profile: also samples the relay with py-spy (on PATH, or $PY_SPY) in each phase and prints
where its busy time goes; sampling slows the relay, so read that run's timings as disturbed.
--phases latency,memory,drain: only some of them, in that order (then the results as JSON).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    import subprocess

HERE = Path(__file__).resolve().parent
RSS_GOAL_MB = 60.0
GROWTH_TOLERANCE_MB = 2.0  # over the 9,000 sends after the first 1,000: allocator noise, not a leak
IDLE_AFTER_S = 35.0  # longer than the relay's 30 s tidy
# the leaf frame of a thread that waits (py-spy's own idle detection misses some of them)
IDLE_LEAVES = (
    "Selector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
    "recv_exact (clawrelay/relay/protocol.py",
    "_wait_for_tstate_lock (threading.py",
    "Event.wait (threading.py",
    "readinto (clawrelay/relay/server.py",
)
GOALS = [  # row, case, floor, ratio goal, absolute goal (ms) or None, what it says, warm floor
    (
        "clawrelay send T x --via sessions_send",
        "send",
        "raw_health",
        0.3,
        30.0,
        "<= 30 ms, <= 0.3x",
        "agent ack",
    ),
    ("clawrelay call GW health", "call", "raw_health", 0.4, None, "<= 0.4x", None),
    (
        "clawrelay exec HOST --via ssh -- true",
        "exec ssh",
        "ssh HOST true",
        0.25,
        None,
        "<= 0.25x",
        "ssh mux true",
    ),
    ("clawrelay exec HOST --via node -- true", "exec node", "raw_node_invoke", 0.5, None, "<= 0.5x", None),
]


# -- the measuring child processes -----------------------------------------------------------


def _one(argv: list[str], env: dict[str, str], cwd: str) -> list[float]:
    """Wall seconds, CPU seconds (user + system) and exit code of one run of argv."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            fd = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(fd, target)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return [wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)]


def _runner() -> None:
    """`python -I -S relay.py --runner` (standard library only, a small process of its own, so the
    benchmark's size does not weigh on each fork): with `warm`, each case once to warm the caches;
    then `runs` rounds of all of them, interleaved; every sample as JSON on stdout."""
    job = json.load(sys.stdin)
    cases, runs, cwd = job["cases"], job["runs"], job["cwd"]
    for argv, env in cases.values() if job["warm"] else ():
        _one(argv, env, cwd)
    out: dict[str, list[list[float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (argv, env) in cases.items():
            out[name].append(_one(argv, env, cwd))
    json.dump(out, sys.stdout)


def _driver() -> None:
    """`python relay.py --driver`: forward one command line n times from this one process (`{i}`
    in it becomes the count), as the console script does but without its interpreter start: the
    relay's own time per command. The commands' output goes to /dev/null; what was measured goes
    out as JSON on the first stdout."""
    job = json.load(sys.stdin)
    from clawrelay.relay.client import forward

    report = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    times: list[float] = []
    codes: dict[str, int] = {}
    not_forwarded = 0
    for i in range(job["start"], job["start"] + job["n"]):
        argv = [a.replace("{i}", str(i)) for a in job["argv"]]
        t0 = time.perf_counter()
        code = forward(argv)
        times.append(time.perf_counter() - t0)
        if code is None:  # no relay took it: not run at all (never run here instead)
            not_forwarded += 1
        else:
            codes[str(code)] = codes.get(str(code), 0) + 1
    json.dump({"times": times, "codes": codes, "not_forwarded": not_forwarded}, report)
    report.close()


def _stub_gateway() -> None:
    """`python relay.py --stub-gateway PORT TOKEN`: just enough of a gateway for sessions_send,
    answering at once: the challenge, `connect` (hello-ok, read and write scopes), and each
    `agent` request accepted, then finished (no agent turn). With it, an outbox drain shows the
    relay's own ceiling rather than the gateway's."""
    import asyncio
    import uuid

    from websockets.asyncio.server import serve

    port, token = int(sys.argv[2]), sys.argv[3]

    async def session(ws: object) -> None:
        send = ws.send  # type: ignore[attr-defined]
        await send(json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n"}}))
        async for raw in ws:  # type: ignore[attr-defined]
            req = json.loads(raw)
            rid, method = req.get("id"), req.get("method")
            if method == "connect":
                ok = (req.get("params") or {}).get("auth", {}).get("token") == token
                hello = {
                    "type": "hello-ok",
                    "protocol": 3,
                    "auth": {"scopes": ["operator.read", "operator.write"]},
                    "policy": {"tickIntervalMs": 30000},
                }
                await send(json.dumps({"type": "res", "id": rid, "ok": ok, "payload": hello}))
            elif method == "agent":
                run = {"runId": str(uuid.uuid4()), "status": "accepted"}
                await send(json.dumps({"type": "res", "id": rid, "ok": True, "payload": run}))
                done = {**run, "status": "ok", "result": {"payloads": []}}
                await send(json.dumps({"type": "res", "id": rid, "ok": True, "payload": done}))
            else:
                await send(json.dumps({"type": "res", "id": rid, "ok": True, "payload": {"ok": True}}))

    async def main() -> None:
        async with serve(session, "127.0.0.1", port):
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())


# -- statistics ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def p90(values: list[float]) -> float:
    """Nearest rank: the smallest sample with at least 90% of the samples at or below it."""
    s = sorted(values)
    return s[max(0, -(-9 * len(s) // 10) - 1)]


def summary(samples: list[list[float]]) -> dict[str, float]:
    walls = [w for w, _, _ in samples]
    return {
        "median_ms": round(median(walls) * 1000, 1),
        "p90_ms": round(p90(walls) * 1000, 1),
        "cpu_ms": round(median([c for _, c, _ in samples]) * 1000, 1),
        "runs": len(samples),
        "failed_runs": sum(1 for _, _, code in samples if code != 0),
    }


def ms_summary(times_s: list[float]) -> dict[str, float]:
    return {"median_ms": round(median(times_s) * 1000, 1), "p90_ms": round(p90(times_s) * 1000, 1)}


# -- processes -------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MB), threads and open descriptors of a process."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
            elif key == "Threads":
                out["threads"] = int(value)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …, utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_quiet(pgid: int, limit: float, window: float = 2.0, busy: float = 0.1) -> float:
    """Wait until a process group uses less than `busy` of a CPU over `window` seconds (its agent
    turns are done), at most `limit` seconds; how long it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        before = group_cpu(pgid)
        time.sleep(window)
        if group_cpu(pgid) - before < window * busy:
            break
    return time.monotonic() - t0


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
    return out


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a child's process group; the child reaped as soon as it exits, what is left of
    its group killed after 5 s. (tests/peer.py's `_stop_group` polls `killpg(pid, 0)`, which a
    zombie leader answers too, so it always waits its full 20 s before it reaps.)"""
    import signal
    import subprocess

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    end = time.monotonic() + 5
    while group_members(proc.pid) and time.monotonic() < end:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        if group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


class RelayProc:
    """`clawrelay serve` on the bench's state dir, in its own session, stopped by its PID."""

    def __init__(self, exe: str, routes: Path, env: dict[str, str], tmp: Path) -> None:
        import subprocess

        self.log = tmp / "relay.log"
        self.env = env
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [exe, "serve", "--interval", "1h", "-c", str(routes)],
                env=env,
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> dict[str, object]:
        from clawrelay.relay.client import ask_stat

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clawrelay serve exited {self.proc.returncode}: {self.tail()}")
            stat = ask_stat(self.env["CLAWRELAY_HOME"])
            if stat.get("running"):
                return stat
            time.sleep(0.05)
        raise RuntimeError(f"the relay did not answer within {timeout:g} s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> tuple[int | None, bool]:
        """SIGTERM; its exit code, and whether its log has a traceback."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, "Traceback" in self.log.read_text(errors="replace")


class SshMaster:
    """An OpenSSH ControlMaster to the bench's sshd (the warm-ssh floor), stopped by its PID."""

    def __init__(self, ssh_argv: list[str], tmp: Path) -> None:
        import shutil

        self.ctl = tmp / "ssh-ctl"
        self.exe = shutil.which("ssh") or "/usr/bin/ssh"
        self.options, self.dest = ssh_argv[1:-2], ssh_argv[-2]  # ssh OPTIONS… USER@HOST true
        self.proc = None

    def start(self, timeout: float = 20.0) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [self.exe, *self.options, "-M", "-N", "-o", f"ControlPath={self.ctl}", self.dest],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + timeout
        while not self.ctl.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("the ssh ControlMaster did not start")
            time.sleep(0.05)

    def argv(self, *command: str) -> list[str]:
        return [self.exe, *self.options, "-o", f"ControlPath={self.ctl}", self.dest, *command]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class StubGateway:
    """`relay.py --stub-gateway` on a free loopback port, stopped by its PID."""

    def __init__(self, tmp: Path, token: str) -> None:
        import socket
        import subprocess

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--stub-gateway", str(port), token],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the stub gateway did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Profiler:
    """py-spy sampling the relay during each phase (--profile): folded stacks per phase."""

    RATE = 200

    def __init__(self, pid: int, tmp: Path, enabled: bool) -> None:
        import shutil

        self.pid, self.tmp = pid, tmp
        self.exe = (os.environ.get("PY_SPY") or shutil.which("py-spy")) if enabled else None
        self.missing = enabled and not self.exe
        self.files: dict[str, Path] = {}
        self._proc = None

    def start(self, phase: str) -> None:
        import subprocess

        if not self.exe:
            return
        out = self.tmp / f"profile-{phase}.txt"
        self.files[phase] = out
        argv = [self.exe, "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.RATE)]
        self._proc = subprocess.Popen(
            [*argv, "--nonblocking", "--threads", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attached before the phase starts

    def stop(self) -> None:
        import signal

        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            self._proc.wait(timeout=60)
            self._proc = None

    def report(self, top: int = 14) -> list[str]:
        if self.missing:
            return ["--profile: py-spy not found (pip install --target DIR py-spy; PY_SPY=DIR/bin/py-spy)"]
        lines = []
        for phase, path in self.files.items():
            if not path.exists():
                continue
            busy, own, cum = 0, {}, {}
            for line in path.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                frames = stack.split(";")
                if not n.isdigit() or any(leaf in frames[-1] for leaf in IDLE_LEAVES):
                    continue
                busy += int(n)
                own[frames[-1]] = own.get(frames[-1], 0) + int(n)
                for f in set(frames):
                    if any(k in f for k in ("clawrelay/", "asyncssh/", "websockets/", "sqlite", "yaml/")):
                        cum[f] = cum.get(f, 0) + int(n)
            if not busy:
                continue
            lines.append("")
            lines.append(
                f"profile of the relay, {phase}: {busy} busy samples at {self.RATE}/s (waiting left out)"
            )
            lines.append("  self:")
            lines += [f"    {100 * v / busy:5.1f}%  {k}" for k, v in _largest(own, top)]
            lines.append("  inclusive (clawrelay, asyncssh, websockets, sqlite, yaml frames):")
            lines += [f"    {100 * v / busy:5.1f}%  {k}" for k, v in _largest(cum, top + 6)]
        return lines


def _largest(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:n]


def drive(argv: list[str], n: int, env: dict[str, str], cwd: Path, start: int = 0) -> dict:
    """`_driver` in a child of this python: n forwarded runs of argv."""
    import subprocess

    job = json.dumps({"argv": argv, "n": n, "start": start})
    p = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--driver"],
        input=job,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    if p.returncode != 0:
        raise RuntimeError(f"the driver failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


def sample(
    cases: dict[str, tuple[list[str], dict[str, str]]], runs: int, cwd: Path, *, warm: bool = False
) -> dict[str, list]:
    import subprocess

    job = json.dumps({"cases": cases, "runs": runs, "cwd": str(cwd), "warm": warm})
    p = subprocess.run(
        [sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--runner"],
        input=job,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise RuntimeError(f"the measuring process failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


def raw_agent(url: str, token: str, session: str, n: int, env: dict[str, str]) -> dict:
    """bench/raw_agent.py: n `agent` requests, one after another, on one connection."""
    import subprocess

    p = subprocess.run(
        [sys.executable, str(HERE / "raw_agent.py"), url, token, session, str(n)],
        capture_output=True,
        text=True,
        env=env,
    )
    if p.returncode != 0:
        raise RuntimeError(f"raw_agent.py failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


# -- the routes and the journal --------------------------------------------------------------


def routes_text(
    gw_url: str, node_id: str, ssh_entry: str, workspace: Path, drain_url: str, stub_url: str
) -> str:
    return (
        "version: 1\nself: bench\n"
        "gateways:\n"
        f'  gw: {{url: "{gw_url}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}\n'
        f'  gq: {{url: "{drain_url}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}\n'
        f'  gs: {{url: "{stub_url}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}\n'
        "hosts:\n"
        f'  xiaom: {{node: {{gateway: gw, id: "{node_id}"}}}}\n'
        f"  box: {{ssh: {ssh_entry}}}\n"
        f'  here: {{local: true, workspace: "{workspace}"}}\n'
        "targets:\n"
        '  t: {session: "agent:main:bench", chain: [sessions_send: {gateway: gw}]}\n'
        '  q: {session: "agent:main:drain", chain: [sessions_send: {gateway: gq, retries: 0}]}\n'
        '  s: {session: "agent:main:stub", chain: [sessions_send: {gateway: gs, retries: 0}]}\n'
        "  m: {host: here, chain: [memory_file]}\n"
    )


def write_atomic(path: Path, text: str) -> None:
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go): connections to it are refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def journal_check(home: Path, target: str) -> dict:
    """What the journal says of a target's messages: how many of each status, how many delivered
    attempts each has, its other attempts by reason, and the delivered attempts' times."""
    import sqlite3

    db = sqlite3.connect(f"file:{home / 'journal.db'}?mode=ro", uri=True)
    try:
        by_status = dict(
            db.execute("SELECT status, count(*) FROM messages WHERE target = ? GROUP BY status", (target,))
        )
        per_message = [
            n
            for (n,) in db.execute(
                "SELECT (SELECT count(*) FROM attempts a WHERE a.message_id = m.id"
                " AND a.outcome = 'delivered') FROM messages m WHERE m.target = ?",
                (target,),
            )
        ]
        others = db.execute(
            "SELECT a.outcome || ' ' || coalesce(a.reason, ''), count(*) FROM attempts a"
            " JOIN messages m ON a.message_id = m.id WHERE m.target = ? AND a.outcome != 'delivered'"
            " GROUP BY 1",
            (target,),
        ).fetchall()
        first, last, in_transport, n = db.execute(
            "SELECT min(a.started_ms), max(a.started_ms + a.elapsed_ms), sum(a.elapsed_ms), count(*)"
            " FROM attempts a JOIN messages m ON a.message_id = m.id"
            " WHERE m.target = ? AND a.outcome = 'delivered'",
            (target,),
        ).fetchone()
        acks = [
            ms
            for (ms,) in db.execute(
                "SELECT a.elapsed_ms FROM attempts a JOIN messages m ON a.message_id = m.id"
                " WHERE m.target = ? AND a.outcome = 'delivered' ORDER BY a.started_ms",
                (target,),
            )
        ]
    finally:
        db.close()
    return {
        "attempt_ms_first_100": median(acks[:100]) if acks else None,
        "attempt_ms_last_100": median(acks[-100:]) if acks else None,
        "messages": len(per_message),
        "by_status": by_status,
        "delivered_once": sum(1 for c in per_message if c == 1),
        "delivered_more_than_once": sum(1 for c in per_message if c > 1),
        "never_delivered": sum(1 for c in per_message if c == 0),
        "other_attempts": dict(others),
        "delivered_window_ms": (last - first) if first is not None else None,
        "mean_attempt_ms": round(in_transport / n, 1) if n else None,
    }


# -- the run ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import tempfile

        from coldstart import floor_script
        from measure import clawrelay_exe

        self.args = args
        self.quick: bool = args.quick
        self.runs: int = args.runs or (3 if self.quick else 15)
        self.drain_n = 30 if self.quick else 1000
        self.drain_floor_n = 10 if self.quick else 100
        self.checkpoints = [100, 300] if self.quick else [1000 * k for k in range(1, 11)]
        self.quiet_limit = 10.0 if self.quick else 120.0
        self.settle_limit = 3.0 if self.quick else 15.0
        self.exe, self.py, self.floor = clawrelay_exe(), sys.executable, floor_script()
        self.tmp = Path(tempfile.mkdtemp(prefix="clawrelay-bench-relay-"))
        self.started = time.monotonic()
        self.res: dict = {
            "machine": {
                "python": sys.version.split()[0],
                "arch": os.uname().machine,
                "cpus": os.cpu_count(),
                "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            },
            "runs": self.runs,
            "quick": self.quick,
            "floor_script": str(self.floor),
            "phases_s": {},
            "quiet_waits_s": {},
        }
        self.relay: RelayProc | None = None
        self.prof: Profiler | None = None
        self.master: SshMaster | None = None

    def say(self, text: str) -> None:
        """Progress, with the seconds since the start (on stderr with --json)."""
        out = sys.stderr if self.args.json else sys.stdout
        print(f"[{time.monotonic() - self.started:5.0f} s] {text}", file=out, flush=True)

    def phase(self, name: str, t0: float) -> None:
        self.res["phases_s"][name] = round(time.monotonic() - t0, 1)

    def quiet(self, before: str) -> None:
        """Before a phase: wait for the gateway's agent turns to end (up to 2 min)."""
        waited = wait_quiet(self.gw.procs["gateway"].pid, self.quiet_limit)
        self.res["quiet_waits_s"][before] = round(waited, 1)

    def settle(self) -> None:
        """Before a latency case that touches the gateway: the same, in 0.5 s steps, up to 15 s."""
        waited = wait_quiet(self.gw.procs["gateway"].pid, self.settle_limit, window=0.5)
        waits = self.res["quiet_waits_s"].setdefault("latency cases", [0, 0.0, 0])  # count, total, cut
        waits[0] += 1
        waits[1] = round(waits[1] + waited, 1)
        waits[2] += waited >= self.settle_limit

    def run(self) -> None:
        import shutil

        from peer import Gateway, openclaw_bin
        from sshd import Sshd, sshd_bin

        t0 = time.monotonic()
        self.gw = Gateway(openclaw_bin(), self.tmp / "gw")
        self.ssh = Sshd(self.tmp / "sshd")
        try:
            self.say("starting a gateway, a node host, sshd and the relay …")
            self.gw.start()
            self.node_id = self.gw.start_node("xiaom")
            self.ssh.start(sshd_bin())
            self.master = SshMaster(self.ssh.ssh_argv("true"), self.tmp)
            self.master.start()
            (self.tmp / "ws").mkdir()
            self.routes = self.tmp / "routes.yaml"
            closed = f"ws://127.0.0.1:{closed_port()}"
            self.urls = {"gw": self.gw.url, "gq": closed, "gs": closed}
            self.write_routes()
            self.env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(self.tmp),
                "LANG": "C.UTF-8",
                "OPENCLAW_GATEWAY_TOKEN": self.gw.token,
                "CLAWRELAY_HOME": str(self.tmp / "state"),
            }
            self.relay = RelayProc(self.exe, self.routes, self.env, self.tmp)
            stat = self.relay.wait_ready()
            time.sleep(1.0)  # its keeper connects to the gateway
            self.res["relay"] = {"pid": self.relay.pid, "stat_at_start": stat, "at_start": self.status()}
            self.prof = Profiler(self.relay.pid, self.tmp, self.args.profile)
            self.phase("setup", t0)
            for phase in self.args.phases.split(","):
                {"latency": self.latency, "memory": self.memory, "drain": self.drain}[phase]()
        except BaseException:
            if self.relay is not None:  # what the relay said, before its folder goes
                alive = self.relay.proc.poll() is None
                self.say(
                    f"failed; the relay is {'running' if alive else f'gone ({self.relay.proc.returncode})'}"
                )
                from clawrelay.relay.client import ask_stat

                self.say(f"it says: {ask_stat(self.env['CLAWRELAY_HOME'])}")
                self.say(f"its log ends:\n{self.relay.tail(40)}")
            raise
        finally:
            t0 = time.monotonic()
            self.say("stopping …")
            if self.prof is not None:
                self.prof.stop()
            if self.relay is not None:
                code, traceback = self.relay.stop()
                self.res.setdefault("relay", {})["exit"] = {"code": code, "traceback_in_log": traceback}
                if code != 0 or traceback:
                    self.res["relay"]["log_tail"] = self.relay.tail(40)
            if self.master is not None:
                self.master.stop()
            self.stop_servers()
            self.res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
            self.profile_lines = self.prof.report() if self.prof is not None else []
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.phase("stop", t0)

    def stop_servers(self) -> None:
        """The node host, gateway, model and sshd, each reaped as soon as it exits (then
        Gateway.stop and Sshd.stop find nothing left to wait for)."""
        for name in [n for n in self.gw.procs if n.startswith("node-")] + ["gateway", "model"]:
            proc = self.gw.procs.pop(name, None)
            if proc is not None:
                stop_group(proc)
        if self.ssh.proc is not None:
            stop_group(self.ssh.proc)
            self.ssh.proc = None
        self.gw.stop()
        self.ssh.stop()

    def restart_gateway(self) -> None:
        """A fresh gateway process on the same port (its model and node host stay): the agent
        turns queued by the last phase are gone, so they do not slow the next one."""
        proc = self.gw.procs.pop("gateway", None)
        if proc is not None:
            stop_group(proc)
        self.gw.start()

    def write_routes(self) -> None:
        u = self.urls
        text = routes_text(u["gw"], self.node_id, self.ssh.routes_entry(), self.tmp / "ws", u["gq"], u["gs"])
        write_atomic(self.routes, text)

    def status(self) -> dict[str, float]:
        assert self.relay is not None
        return proc_status(self.relay.pid)

    # -- latency ---------------------------------------------------------------------------

    def latency(self) -> None:
        import shutil

        from coldstart import failure

        assert self.relay is not None and self.prof is not None and self.master is not None
        t0 = time.monotonic()
        r, py, gw = str(self.routes), self.py, self.gw
        commands = {
            "send": ["send", "t", "bench message", "--via", "sessions_send", "-c", r],
            "call": ["call", "gw", "health", "-c", r],
            "exec ssh": ["exec", "box", "--via", "ssh", "-c", r, "--", "true"],
            "exec node": ["exec", "xiaom", "--via", "node", "-c", r, "--", "true"],
        }
        client = (
            "import re, clawrelay.launch, clawrelay.relay.client"  # what the console script imports first
        )
        argvs: dict[str, list[str]] = {
            "python -c pass": [py, "-c", "pass"],
            "python -S -c pass": [py, "-S", "-c", "pass"],
            "client imports": [py, "-c", client],
        }
        floors = {
            "send": ("raw_health", [py, str(self.floor), gw.url, gw.token]),
            "exec ssh": (
                "ssh HOST true",
                [shutil.which("ssh") or "/usr/bin/ssh", *self.ssh.ssh_argv("true")[1:]],
            ),
            "exec node": (
                "raw_node_invoke",
                [py, str(HERE / "raw_node_invoke.py"), gw.url, gw.token, self.node_id, "true"],
            ),
        }
        for name, command in commands.items():
            argvs[f"{name} relay"] = [self.exe, *command]
            argvs[f"{name} --no-relay"] = [self.exe, "--no-relay", *command]
            if name in floors:  # call's floor is raw_health too, measured once a round
                floor, argv = floors[name]
                argvs[floor] = argv
            if name == "exec ssh":
                argvs["ssh mux true"] = self.master.argv("true")
        failed = {name: why for name, argv in argvs.items() if (why := failure(argv, self.env, self.tmp))}
        cases = {name: (argv, self.env) for name, argv in argvs.items() if name not in failed}
        self.quiet("latency")
        self.say(f"latency: {self.runs} rounds of {len(cases)} cases, interleaved …")
        self.prof.start("latency")
        sample(cases, 0, self.tmp, warm=True)
        samples: dict[str, list] = {name: [] for name in cases}
        forwarded: dict[str, list[float]] = {name: [] for name in commands}
        codes: dict[str, dict[str, int]] = {name: {} for name in commands}
        acks: list[float] = []

        def forward_once(name: str) -> None:  # from a warm process: the relay's own time
            d = drive(commands[name], 1, self.env, self.tmp)
            forwarded[name] += d["times"]
            for code, k in {**d["codes"], **({"none": 1} if d["not_forwarded"] else {})}.items():
                codes[name][code] = codes[name].get(code, 0) + k

        # every message the gateway accepts starts an agent turn that keeps it busy for a second
        # or two: each case that sends one waits for the gateway to go quiet first, in an order
        # that turns round by round; the other cases run together after such a wait
        turns = ["send relay", "send --no-relay", "send in relay", "agent ack"]
        steady = {name: case for name, case in cases.items() if name not in turns}
        for i in range(self.runs):
            self.settle()
            for name, got in sample(steady, 1, self.tmp).items():
                samples[name] += got
            for name in ("call", "exec ssh", "exec node"):
                forward_once(name)
            for what in turns[i % len(turns) :] + turns[: i % len(turns)]:
                self.settle()
                if what == "send in relay":
                    forward_once("send")
                elif what == "agent ack":
                    acks += raw_agent(gw.url, gw.token, "agent:main:floor-ack", 1, self.env)["acks_ms"]
                elif what in cases:
                    samples[what] += sample({what: cases[what]}, 1, self.tmp)[what]
        self.prof.stop()
        in_relay = {name: {**ms_summary(forwarded[name]), "codes": codes[name]} for name in commands}
        self.res["latency"] = {name: summary(s) for name, s in samples.items()}
        self.res["latency"]["agent ack"] = ms_summary([a / 1000 for a in acks])
        self.res["latency_failed"] = failed
        self.res["in_relay"] = in_relay
        self.res["relay"]["after_latency"] = self.status()
        self.phase("latency", t0)

    # -- memory ----------------------------------------------------------------------------

    def memory(self) -> None:
        assert self.relay is not None and self.prof is not None
        t0 = time.monotonic()
        self.say(f"memory: {self.checkpoints[-1]:,} forwarded sends (memory_file to a local host) …")
        send = ["send", "m", "rss message {i}", "-c", str(self.routes)]
        rss, done, rates = [], 0, []
        self.prof.start("sends")
        for upto in self.checkpoints:
            d = drive(send, upto - done, self.env, self.tmp, start=done)
            if d["not_forwarded"] or set(d["codes"]) != {"0"}:
                raise RuntimeError(f"sends {done}..{upto}: {d['codes']}, {d['not_forwarded']} not forwarded")
            rates.append(round((upto - done) / sum(d["times"]), 1))
            done = upto
            time.sleep(1.0)  # idle
            rss.append({"sends": upto, **self.status()})
        self.prof.stop()
        idle = None
        if not self.quick:
            time.sleep(IDLE_AFTER_S)
            idle = {"sends": done, "idle_s": IDLE_AFTER_S, **self.status()}
        first, last = rss[0], rss[-1]
        per_1000 = (last["VmRSS"] - first["VmRSS"]) / ((last["sends"] - first["sends"]) / 1000)
        self.res["memory"] = {
            "transport": "memory_file to a local host",
            "checkpoints": rss,
            "after_idle": idle,
            "sends_per_s": rates,
            "growth_mb_per_1000": round(per_1000, 2),
        }
        self.phase("memory", t0)

    # -- drain -----------------------------------------------------------------------------

    def drain(self) -> None:
        assert self.relay is not None and self.prof is not None
        t0 = time.monotonic()
        n = self.drain_n
        # the relay's own ceiling first: a stub gateway that accepts each message at once
        self.say(f"drain: {n} messages queued for a closed port, then flushed to a stub gateway …")
        stub = StubGateway(self.tmp, self.gw.token)
        try:
            queued = self.queue("s", n)
            self.urls["gs"] = stub.url
            self.write_routes()
            self.res["drain_stub"] = {**queued, **self.flush("s", n, "drain-stub")}
        finally:
            stub.stop()
        # then the real gateway, after the floor: one connection, one `agent` request after another
        self.say(f"drain: {n} messages queued for a closed port …")
        queued = self.queue("q", n)
        self.quiet("drain floor")
        self.say(f"drain: the floor, raw_agent.py with {self.drain_floor_n} requests …")
        floor = raw_agent(self.gw.url, self.gw.token, "agent:main:floor-drain", self.drain_floor_n, self.env)
        if not self.quick:  # the floor's agent turns would slow the drain: a fresh gateway for it
            self.say("drain: restarting the gateway …")
            self.restart_gateway()
        self.urls["gq"] = self.gw.url
        self.write_routes()
        self.quiet("drain")
        self.say(f"drain: `clawrelay outbox flush --now` via the relay, {n} messages to the gateway …")
        self.res["drain"] = {
            **queued,
            **self.flush("q", n, "drain"),
            "floor": {
                "requests": self.drain_floor_n,
                "per_s": round(self.drain_floor_n / floor["total_s"], 1),
                **ms_summary([a / 1000 for a in floor["acks_ms"]]),
            },
        }
        self.res["relay"]["after_drain"] = self.status()
        self.phase("drain", t0)

    def queue(self, target: str, n: int) -> dict:
        """n forwarded `clawrelay send` to a target whose gateway is a closed port: each one
        fails, and is `queued` in the journal."""
        t1 = time.perf_counter()
        d = drive(["send", target, "drain message {i}", "-c", str(self.routes)], n, self.env, self.tmp)
        queued_s = time.perf_counter() - t1
        before = journal_check(self.tmp / "state", target)
        if d["not_forwarded"] or d["codes"] != {"1": n} or before["by_status"] != {"queued": n}:
            raise RuntimeError(f"queueing: {d['codes']}, {d['not_forwarded']} not forwarded; {before}")
        return {"messages": n, "queued_in_s": round(queued_s, 2), "queued_journal": before}

    def flush(self, target: str, n: int, phase: str) -> dict:
        """`clawrelay outbox flush --now --json`, forwarded to the relay, timed; then the journal."""
        import subprocess

        assert self.prof is not None
        self.prof.start(phase)
        out = self.tmp / f"{phase}.json"
        with open(out, "wb") as f:
            t1 = time.perf_counter()
            p = subprocess.run(
                [self.exe, "outbox", "flush", "--now", "--json", "-c", str(self.routes)],
                env=self.env,
                cwd=self.tmp,
                stdout=f,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - t1
        self.prof.stop()
        after = journal_check(self.tmp / "state", target)
        try:
            said = sum(1 for x in json.loads(out.read_text())["retried"] if x.get("status") == "delivered")
        except (ValueError, KeyError, TypeError):
            said = None
        return {
            "flush_exit": p.returncode,
            "flush_stderr": p.stderr.decode(errors="replace")[-500:],
            "flush_wall_s": round(wall, 3),
            "per_s": round(n / wall, 1),
            "flush_said_delivered": said,
            "journal": after,
            "ok": after["by_status"] == {"delivered": n}
            and after["delivered_once"] == n
            and p.returncode == 0,
        }


def main() -> None:
    import argparse

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent / "tests"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="rounds of the latency cases (default 15)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 rounds, 300 sends, 30 drained")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON document")
    ap.add_argument("--profile", action="store_true", help="sample the relay with py-spy in each phase")
    ap.add_argument(
        "--phases",
        default="latency,memory,drain",
        help="which phases, in order (default latency,memory,drain; the tables need all three)",
    )
    args = ap.parse_args()
    bench = Bench(args)
    bench.run()
    if args.json or set(args.phases.split(",")) != {"latency", "memory", "drain"}:
        print(json.dumps(bench.res, indent=1))
    else:
        report(bench.res)
    for line in bench.profile_lines:
        print(line, file=sys.stderr if args.json else sys.stdout)


# -- the tables ------------------------------------------------------------------------------


def report(res: dict) -> None:
    m, lat, in_relay = res["machine"], res["latency"], res["in_relay"]
    print()
    print(
        f"python {m['python']} on {m['arch']}, {m['cpus']} cpus, load average {m['loadavg_start']} at the "
        f"start, {m['loadavg_end']} at the end; real gateway, node host and sshd on loopback"
    )
    waits = dict(res["quiet_waits_s"])
    count, total, cut = waits.pop("latency cases", [0, 0.0, 0])
    print(
        f"phases (s): {res['phases_s']}; waited for a quiet gateway (s): {waits}, and before the "
        f"latency cases {count} times, {total:.0f} s in all ({cut} cut short)"
    )
    print(f"{res['runs']} rounds, interleaved; floor {res['floor_script']}")
    for name in ("python -c pass", "python -S -c pass", "client imports"):
        if name in lat:
            s = lat[name]
            print(f"  {name:<20} median {s['median_ms']:>6.1f} ms   p90 {s['p90_ms']:>6.1f} ms")
    print()
    print(
        f"{'with the relay up':<40} {'relay med/p90':>15} {'CPU':>6} {'--no-relay':>10}  {'floor':<16}"
        f"{'median':>8} {'relay/floor':>11}  {'goal':<18} {'met':<4} {'in relay':>9}  warm floor"
    )
    for row, case, base, ratio, absolute, says, warm in GOALS:
        rel, inp, fl = lat.get(f"{case} relay"), lat.get(f"{case} --no-relay"), lat.get(base)
        if rel is None or fl is None:
            why = res["latency_failed"].get(f"{case} relay") or res["latency_failed"].get(base)
            print(f"{row:<40} failed: {why}")
            continue
        x = rel["median_ms"] / fl["median_ms"]
        met = x <= ratio and (absolute is None or rel["median_ms"] <= absolute) and not rel["failed_runs"]
        no_relay = f"{inp['median_ms']:>7.0f} ms" if inp else "    failed"
        warm_floor = f"{warm} {lat[warm]['median_ms']:.0f} ms" if warm and warm in lat else "—"
        print(
            f"{row:<40} {rel['median_ms']:>6.0f} /{rel['p90_ms']:>4.0f} ms {rel['cpu_ms']:>3.0f} ms "
            f"{no_relay:>10}  {base:<16}{fl['median_ms']:>5.0f} ms {x:>10.2f}x  {says:<18} "
            f"{'yes' if met else 'no':<4} {in_relay[case]['median_ms']:>6.0f} ms  {warm_floor}"
        )
    print(
        "  relay med/p90: the console script forwarding to the relay, process start to exit (CPU: "
        "its own);\n  in relay: the same command forwarded from a warm Python process (the relay's "
        "time alone);\n  warm floor: agent ack = raw_agent.py's `agent` request on an open "
        "connection, ssh mux true = `ssh HOST true` over a ControlMaster"
    )
    bad = {k: v["codes"] for k, v in in_relay.items() if set(v["codes"]) != {"0"}}
    if bad:
        print(f"  NOT ALL FORWARDED AND EXIT 0 (in relay; `none`: the relay did not take it): {bad}")
    drain_report(res["drain"], res.get("drain_stub"))
    memory_report(res)


def drain_report(d: dict, stub: dict | None) -> None:
    n = d["messages"]
    print()
    print(
        f"outbox drain: {n:,} messages to one gateway (sessions_send), each queued by a forwarded "
        f"`clawrelay send` to a closed port ({d['queued_in_s']:.1f} s for all: "
        f"{d['queued_journal']['by_status']}), "
        "then `outbox flush --now` via the relay"
    )
    met = d["per_s"] >= 200 and d["ok"]
    fl = d["floor"]
    print(
        f"  to the real gateway: {d['flush_wall_s']:.2f} s, {d['per_s']:.1f} messages/s (goal >= 200: "
        f"{'yes' if met else 'no'}), exit {d['flush_exit']}; floor raw_agent.py ({fl['requests']} `agent` "
        f"requests one after another, one connection) {fl['per_s']:.1f}/s, ack median "
        f"{fl['median_ms']:.0f} ms → relay/floor rate {d['per_s'] / fl['per_s']:.2f}x"
    )
    _drain_lines(d)
    if stub is not None:
        print(
            "  to a stub gateway that accepts at once (the relay's own ceiling): "
            f"{stub['flush_wall_s']:.2f} s, "
            f"{stub['per_s']:.1f} messages/s, exit {stub['flush_exit']}"
        )
        _drain_lines(stub)


def _drain_lines(d: dict) -> None:
    j, n = d["journal"], d["messages"]
    if j["mean_attempt_ms"] is not None:
        per = j["delivered_window_ms"] / n
        print(
            f"    per message {per:.1f} ms (first delivered attempt to last): {j['mean_attempt_ms']:.1f} ms "
            f"waiting for the ack, {per - j['mean_attempt_ms']:.1f} ms the relay's own (journal, claims, "
            f"router); the flush's start and end {d['flush_wall_s'] * 1000 - j['delivered_window_ms']:.0f} ms"
        )
        if n >= 200:  # does the gateway slow down as its agent turns pile up?
            print(
                f"    the ack's median over the first 100 messages {j['attempt_ms_first_100']:.0f} ms, over "
                f"the last 100 {j['attempt_ms_last_100']:.0f} ms"
            )
    print(
        f"    journal: {j['by_status']}; delivered exactly once {j['delivered_once']:,}, more than once "
        f"{j['delivered_more_than_once']}, never {j['never_delivered']}; other attempts "
        f"{j['other_attempts']} → {'ok' if d['ok'] else 'NOT OK'}"
    )
    if d["flush_stderr"].strip():
        print(f"    flush stderr: {d['flush_stderr'].strip()[-300:]}")


def memory_report(res: dict) -> None:
    mem, rel = res["memory"], res["relay"]
    print()
    print(f"relay memory (/proc/{rel['pid']}/status), sends via {mem['transport']}, read after 1 s idle:")
    print(f"  {'when':<30} {'VmRSS':>8} {'VmHWM':>8} {'threads':>8} {'fds':>5}")
    rows = [("at start", rel["at_start"]), ("after the latency cases", rel["after_latency"])]
    rows += [(f"after {c['sends']:,} sends", c) for c in mem["checkpoints"]]
    if mem["after_idle"]:
        rows.append((f"then {mem['after_idle']['idle_s']:.0f} s idle", mem["after_idle"]))
    if "after_drain" in rel:
        rows.append(("after the drain", rel["after_drain"]))
    for label, s in rows:
        print(f"  {label:<30} {s['VmRSS']:>5.1f} MB {s['VmHWM']:>5.1f} MB {s['threads']:>8} {s['fds']:>5}")
    first, last = mem["checkpoints"][0], mem["checkpoints"][-1]
    growth = last["VmRSS"] - first["VmRSS"]
    allowed = GROWTH_TOLERANCE_MB * (last["sends"] - first["sends"]) / 9000
    print(
        f"  after {first['sends']:,} sends {first['VmRSS']:.1f} MB (goal <= {RSS_GOAL_MB:.0f} MB: "
        f"{'yes' if first['VmRSS'] <= RSS_GOAL_MB else 'no'}); {first['sends']:,} → {last['sends']:,} sends "
        f"{growth:+.1f} MB = {mem['growth_mb_per_1000']:+.2f} MB per 1,000 (no growth, within "
        f"{allowed:.1f} MB: {'yes' if growth <= allowed else 'no'}"
        f"{'; --quick: too few sends to judge' if res['quick'] else ''})"
    )
    print(f"  forwarded sends/s, batch by batch: {mem['sends_per_s']}")
    e = rel.get("exit", {})
    print(f"relay stopped: exit {e.get('code')}, traceback in its log: {e.get('traceback_in_log')}")
    if rel.get("log_tail"):
        print(rel["log_tail"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--runner"]:
        _runner()
    elif sys.argv[1:2] == ["--driver"]:
        _driver()
    elif sys.argv[1:2] == ["--stub-gateway"]:
        _stub_gateway()
    else:
        main()
