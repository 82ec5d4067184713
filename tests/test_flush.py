"""`clawrelay outbox flush`: oldest first, target by target, with backoff; two flushers at once;
SIGTERM during an attempt. Real subprocesses as transports (the gateway case is in test_fleet)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import textwrap
import time

import pytest
from conftest import Env, header, program, wait_for


def outbox_routes(env: Env, *, seconds: float | None = None) -> None:
    """Target `s`: a program that delivers only while the flag file exists; `t`: always delivers."""
    argv = program("when_file.py", env.tmp / "up", env.tmp / "out.txt", *([seconds] if seconds else []))
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    targets:
      s: {{chain: [command: {{argv: {json.dumps(argv)}, retries: 0, timeout: 30s}}]}}
      t: {{host: here, chain: [memory_file]}}
    """)
    )


def delivered_lines(env: Env) -> list[str]:
    out = env.tmp / "out.txt"
    return out.read_text().splitlines() if out.exists() else []


def test_one_pass_goes_oldest_first_and_stops_a_target_at_its_first_failure(env: Env) -> None:
    outbox_routes(env)
    ids = [env.run("send", "s", f"message {i}", "--json").json()["id"] for i in range(3)]

    r = env.run("outbox", "flush", "--json")  # all three are in their backoff
    assert r.code == 0 and not r.json()["retried"]
    assert {s["reason"] for s in r.json()["skipped"]} == {"backoff"}

    r = env.run("outbox", "flush", "--now", "--json")  # still down: the oldest is tried, the rest wait
    assert r.code == 1
    doc = r.json()
    assert [d["id"] for d in doc["retried"]] == ids[:1]
    assert [(s["id"], s["reason"]) for s in doc["skipped"]] == [(i, "behind_undelivered") for i in ids[1:]]

    (env.tmp / "up").touch()
    r = env.run("outbox", "flush", "--now")
    assert r.code == 0, r.err
    assert delivered_lines(env) == ["message 0", "message 1", "message 2"]
    assert "delivered to s via command" in r.out
    assert env.run("outbox", "list", "--json").json() == []

    # a target taken out of the routes: its message waits (for the target or a purge), said so
    (env.tmp / "up").unlink()
    kept = env.run("send", "s", "for a target about to go", "--json").json()["id"]
    env.routes(header(env.workspace) + "targets:\n  t: {host: here, chain: [memory_file]}\n")
    r = env.run("outbox", "flush", "--now", "--json")
    assert r.code == 0 and r.json()["skipped"] == [{"id": kept, "reason": "unknown_target", "target": "s"}]
    assert "1 waiting (unknown target)" in env.run("outbox", "flush", "--now").out


def test_two_flushers_at_once_deliver_each_message_exactly_once(env: Env) -> None:
    outbox_routes(env)
    bodies = [f"only once {i}" for i in range(6)]
    for b in bodies:
        assert env.run("send", "s", b).code == 1
    (env.tmp / "up").touch()
    procs = [env.spawn("outbox", "flush", "--now", "--json") for _ in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(delivered_lines(env)) == sorted(bodies)  # each exactly once, none lost
    for record in env.run("log", "--json").json():
        assert [a["outcome"] for a in record["attempts"]].count("delivered") == 1
    delivered = [d["id"] for r in results for d in r["retried"] if d["status"] == "delivered"]
    assert len(delivered) == len(set(delivered)) == len(bodies)


def test_sigterm_lets_the_attempt_in_flight_finish_then_exits(env: Env) -> None:
    outbox_routes(env, seconds=3)
    first = env.run("send", "s", "slow but sure", "--json").json()["id"]
    second = env.run("send", "s", "not started", "--json").json()["id"]
    (env.tmp / "up").touch()
    log = env.tmp / "flush.out"
    with log.open("w") as f:
        proc = subprocess.Popen(
            env.cmd("outbox", "flush", "--watch", "--interval", "30s"),
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=env.tmp,
            env=env.vars,
        )
    try:
        # the watcher sees `s` answer (its program is there) and drains it at once, backoff or not
        wait_for(lambda: f"(id {first}, run 2)" in log.read_text(), 30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert delivered_lines(env) == ["slow but sure"]  # the attempt in flight finished
    assert "stopped" in log.read_text()
    records = {r["id"]: r for r in env.run("log", "--json").json()}
    assert records[first]["status"] == "delivered"
    assert records[second]["status"] == "queued" and records[second]["runs"] == 1  # never started
    assert [m["id"] for m in env.run("outbox", "list", "--json").json()] == [second]


def test_an_outbox_written_by_the_previous_journal_version_is_flushed(env: Env) -> None:
    """A user upgrading with messages waiting: the journal is migrated in place, nothing lost."""
    outbox_routes(env)
    env.home.mkdir(parents=True)
    db = sqlite3.connect(env.home / "journal.db")
    db.executescript("""
    CREATE TABLE messages (id TEXT PRIMARY KEY, kind TEXT NOT NULL, sender TEXT NOT NULL,
      target TEXT NOT NULL, body TEXT NOT NULL, hops INTEGER NOT NULL, created_ms INTEGER NOT NULL,
      status TEXT NOT NULL, via TEXT, reply TEXT, runs INTEGER NOT NULL DEFAULT 0,
      updated_ms INTEGER NOT NULL, next_attempt_ms INTEGER, expires_ms INTEGER NOT NULL);
    CREATE TABLE attempts (message_id TEXT NOT NULL REFERENCES messages(id), run INTEGER NOT NULL,
      step INTEGER NOT NULL, transport TEXT NOT NULL, carrier TEXT, outcome TEXT NOT NULL, reason TEXT,
      retryable INTEGER NOT NULL, detail TEXT, started_ms INTEGER NOT NULL, elapsed_ms INTEGER NOT NULL);
    PRAGMA user_version=1;
    """)
    now = int(time.time() * 1000)
    db.execute(
        "INSERT INTO messages VALUES ('01a00000-0000-7000-8000-000000000001', 'message', 'tester',"
        " 's', 'from before the upgrade', 0, ?, 'queued', NULL, NULL, 1, ?, ?, ?)",
        (now - 1000, now - 1000, now - 500, now + 86_400_000),
    )
    db.commit()
    db.close()
    (env.tmp / "up").touch()
    r = env.run("outbox", "flush", "--json")
    assert r.code == 0, r.err
    assert [d["status"] for d in r.json()["retried"]] == ["delivered"]
    assert delivered_lines(env) == ["from before the upgrade"]
    assert env.run("log", "--json").json()[0]["batch"] is None


def test_a_stopped_router_finishes_the_attempt_and_starts_no_retry_and_no_next_step(env: Env) -> None:
    """What SIGTERM does inside: the attempt in flight is journaled, then nothing more starts."""
    import asyncio

    from clawrelay.config import load_routes
    from clawrelay.journal import Journal
    from clawrelay.router import Router

    argv = program("when_file.py", env.tmp / "up", env.tmp / "out.txt")
    path = env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    targets:
      s: {{host: here, chain: [command: {{argv: {json.dumps(argv)}, retries: 5}}, memory_file]}}
    """)
    )
    env.home.mkdir(parents=True)
    router = Router(load_routes(str(path)), Journal(env.home), on_attempt=lambda _env, _a: router.stop())

    async def go() -> list:
        try:
            return await router.send(router.envelopes(["s"], "stop after me", 0))
        finally:
            await router.aclose()

    (delivery,) = asyncio.run(go())
    assert [(a.transport, a.reason) for a in delivery.attempts] == [("command", "tempfail")]
    assert delivery.queued and not (env.workspace / "memory").exists()
    (record,) = Journal(env.home).outbox()
    assert record.id == delivery.id and len(record.attempts) == 1


@pytest.mark.integration  # the unit runs the relay, a server
def test_the_shipped_systemd_unit_starts_a_watcher_that_delivers_and_stops_on_its_kill_signal(
    env: Env,
) -> None:
    """contrib/systemd/clawrelay-flush.service, as systemd would run it (%h = the user's home)."""
    import os
    import shlex
    from pathlib import Path

    from conftest import CLAWRELAY

    root = Path(__file__).resolve().parents[1]
    unit = (root / "contrib" / "systemd" / "clawrelay-flush.service").read_text()
    assert unit in (root / "docs" / "fleet.md").read_text()  # the documented unit is the shipped one
    fields = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    home = env.tmp / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    os.symlink(str(CLAWRELAY), home / ".local" / "bin" / "clawrelay")

    outbox_routes(env)
    message = env.run("send", "s", "delivered by the service", "--json").json()["id"]
    (env.tmp / "up").touch()
    proc = subprocess.Popen(
        shlex.split(fields["ExecStart"].replace("%h", str(home))),
        cwd=env.tmp,
        env={**env.vars, "HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: env.run("log", "--json").json()[-1]["status"] == "delivered", 60)
        proc.send_signal(getattr(signal, fields["KillSignal"]))
        out, err = proc.communicate(timeout=float(fields["TimeoutStopSec"]))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"delivered to s via command (id {message})" in out and out.rstrip().endswith("stopped")
    assert delivered_lines(env) == ["delivered by the service"]


def test_a_retry_keeps_the_via_the_message_was_sent_with(env: Env) -> None:
    """Sent with `--via command`, it waits for that rung: a flush never takes it down the chain."""
    argv = program("when_file.py", env.tmp / "up", env.tmp / "out.txt")
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    targets:
      s: {{host: here, chain: [command: {{argv: {json.dumps(argv)}, retries: 0}}, memory_file: {{wake: false}}]}}
    """)
    )
    sent = env.run("send", "s", "only by command", "--via", "command", "--json")
    assert sent.code == 1 and sent.json()["status"] == "failed"
    for flush in (
        ["outbox", "flush", "--now"],
        ["outbox", "retry", "--now"],
        ["outbox", "retry", sent.json()["id"]],
    ):
        r = env.run(*flush, "--json")
        assert r.code == 1, r.out
        assert [a["transport"] for d in r.json()["retried"] for a in d["attempts"]] == ["command"], flush
    assert not (env.workspace / "memory").exists()  # the rung the sender excluded was never tried
    (listed,) = env.run("outbox", "list", "--json").json()
    assert listed["only_via"] == "command"
    assert "only via command" in env.run("outbox", "list").out

    (env.tmp / "up").touch()
    r = env.run("outbox", "flush", "--now", "--json")
    assert r.code == 0 and [d["via"] for d in r.json()["retried"]] == ["command"]
    assert delivered_lines(env) == ["only by command"]


def test_short_ids_are_the_end_of_the_id_and_unique_in_practice(env: Env) -> None:
    """A UUIDv7 starts with the time: messages of one minute share their first eight digits."""
    outbox_routes(env)
    sent = [env.run("send", "s", f"m{i}", "--json").json()["id"] for i in range(3)]
    assert len({i[:8] for i in sent}) == 1  # what the README used to show as a short id
    r = env.run("outbox", "retry", sent[1][:8])
    assert r.code == 2 and "matches more than one message" in r.err
    last = env.run("send", "s", "m3")
    short = sent[1][-8:]
    assert f"clawrelay outbox retry {env.run('outbox', 'list', '--json').json()[3]['id'][-8:]}" in last.out
    (env.tmp / "up").touch()
    r = env.run("outbox", "retry", short, "--json")
    assert r.code == 0 and [d["id"] for d in r.json()["retried"]] == [sent[1]]
    assert env.run("outbox", "purge", sent[2][-8:]).code == 0


STARTING = """
import sys, time
from pathlib import Path
flag, log, counter = map(Path, sys.argv[1:4])
body = sys.stdin.read()
if not flag.exists():
    sys.exit(75)  # down
calls = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(calls + 1))
if calls == 0:
    sys.exit(75)  # up, but still starting: the first one after it comes up fails
with log.open("a") as f:
    f.write(f"start {body}\\n")
time.sleep(1.5 if body == "m1" else 0.2)
with log.open("a") as f:
    f.write(f"end {body}\\n")
"""


def test_a_targets_messages_go_one_at_a_time_in_order_whatever_retries_them(env: Env) -> None:
    """A target that comes up still starting fails its first message: `outbox retry` (cron's
    old recipe) must not deliver the next ones ahead of it, nor send one while a flusher is still
    sending the one before."""
    import sys

    prog, flag, log = env.tmp / "starting.py", env.tmp / "up", env.tmp / "log.txt"
    prog.write_text(STARTING)
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    targets:
      s: {{chain: [command: {{argv: {
            json.dumps([sys.executable, str(prog), str(flag), str(log), str(env.tmp / "calls")])
        }, retries: 0}}]}}
    """)
    )
    ids = [env.run("send", "s", f"m{i}", "--json").json()["id"] for i in (1, 2, 3)]
    flag.touch()

    r = env.run("outbox", "retry", "--now", "--json")  # m1 meets the target still starting
    assert r.code == 1
    assert [d["id"] for d in r.json()["retried"]] == ids[:1]
    assert [(s["id"], s["reason"]) for s in r.json()["skipped"]] == [
        (i, "behind_undelivered") for i in ids[1:]
    ]
    assert not log.exists()  # nothing overtook m1

    # a flusher is sending m1 (slowly) when a retry comes: it leaves the target to the flusher
    flusher = env.spawn("outbox", "flush", "--now", "--json")
    try:
        wait_for(lambda: log.exists() and "start m1" in log.read_text(), 30)
        r = env.run("outbox", "retry", "--now", "--json")
        assert r.code == 0 and r.json()["retried"] == []
        assert [(s["id"], s["reason"]) for s in r.json()["skipped"]] == [
            (ids[0], "in_flight"),
            (ids[1], "behind_undelivered"),
            (ids[2], "behind_undelivered"),
        ]
    finally:
        out, _ = flusher.communicate(timeout=60)
    assert flusher.returncode == 0, out
    assert log.read_text().splitlines() == ["start m1", "end m1", "start m2", "end m2", "start m3", "end m3"]
