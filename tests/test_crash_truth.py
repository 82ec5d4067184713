"""A sender killed mid-attempt: its program dies with it, and the journal says what happened.

`kill -9` runs no cleanup, so everything here rests on what the kernel does for a dead process:
it drops the message's flock (so the next clawrelay knows the sender is gone) and closes the
lifeline pipe (so the program it started is killed). The attempt was journaled as started
before it began; recovery turns it into `ambiguous` (interrupted), resent automatically only
where a resend is harmless.
"""

from __future__ import annotations

import fcntl
import json
import os
import textwrap
from pathlib import Path

from conftest import Env, alive, header, program, wait_for

from clawrelay.envelope import Envelope
from clawrelay.journal import Journal, now_ms
from clawrelay.outcome import Attempt, Outcome, Status


def routes(env: Env, steps: str, targets: tuple[str, ...] = ("xiaom",)) -> Path:
    body = "".join(
        f"""
      {t}:
        host: here
        chain:
{steps}"""
        for t in targets
    )
    groups = f"\ngroups:\n  all: [{', '.join(targets)}]\n"
    return env.routes(
        header(env.workspace) + "targets:" + textwrap.indent(textwrap.dedent(body), "  ") + groups
    )


def command(argv: list[str], timeout: str = "60s") -> str:
    return f"          - command: {{argv: {json.dumps(argv)}, timeout: {timeout}, retries: 0}}"


def test_a_killed_sender_takes_its_program_with_it_and_the_journal_says_interrupted(env: Env) -> None:
    pids, out, flag = env.tmp / "hang.pids", env.tmp / "out.txt", env.tmp / "up"
    routes(env, command(program("hang.py", pids)))
    proc = env.spawn("send", "xiaom", "run me once", "--json")
    wait_for(pids.exists)
    parent, child = map(int, pids.read_text().split())
    (listed,) = env.run("outbox", "list", "--json").json()
    assert listed["in_flight"] is True and [a["outcome"] for a in listed["attempts"]] == ["started"]

    proc.kill()
    proc.wait()
    wait_for(lambda: not alive(parent) and not alive(child), 10)  # the program died with its sender

    (listed,) = env.run("outbox", "list", "--json").json()
    assert (listed["status"], listed["in_flight"]) == ("ambiguous", False)
    (attempt,) = listed["attempts"]
    assert (attempt["outcome"], attempt["reason"], attempt["retryable"]) == (
        "ambiguous",
        "interrupted",
        False,
    )
    assert "the sender died while command ran" in attempt["detail"]

    # nothing automatic runs it again
    pids.unlink()
    routes(env, command(program("when_file.py", flag, out)))
    flag.touch()
    r = env.run("outbox", "retry", "--now", "--json")
    assert r.code == 0 and r.json()["skipped"] == [{"id": listed["id"], "reason": "ambiguous"}], r.out
    r = env.run("outbox", "flush", "--now", "--json")
    assert r.code == 0 and r.json()["retried"] == [], r.out
    assert not out.exists()

    # a person can
    r = env.run("outbox", "retry", listed["id"][-8:], "--json")
    assert r.code == 0, r.err
    assert out.read_text() == "run me once\n"
    (record,) = env.run("log", "--json").json()
    assert (record["status"], record["runs"]) == ("delivered", 2)


def test_a_killed_group_send_runs_no_program_twice(env: Env) -> None:
    """Four of six targets have their program running (four at a time) when the sender dies."""
    targets = tuple(f"t{i}" for i in range(6))
    runs = env.tmp / "runs"
    runs.mkdir()
    # hang.py takes its pid file from argv: give each target its own through a tiny shell
    routes(
        env,
        command(["sh", "-c", 'exec "$0" "$1" "$2/$CLAWRELAY_TARGET"', *program("hang.py"), str(runs)]),
        targets,
    )
    proc = env.spawn("send", "@all", "to everyone", "--json")
    wait_for(lambda: len(list(runs.glob("t?"))) == 4)
    started = sorted(p.name for p in runs.glob("t?"))
    pairs = [tuple(map(int, (runs / t).read_text().split())) for t in started]
    proc.kill()
    proc.wait()
    wait_for(lambda: not any(alive(pid) for pair in pairs for pid in pair), 10)

    listed = {m["target"]: m for m in env.run("outbox", "list", "--json").json()}
    assert sorted(t for t, m in listed.items() if m["status"] == "ambiguous") == started
    assert all(m["attempts"] == [] for t, m in listed.items() if t not in started)  # never began: queued

    record = env.tmp / "record.jsonl"
    routes(env, command(program("record.py", record)), targets)
    r = env.run("outbox", "retry", "--now", "--json")
    assert r.code == 0, r.err
    sent = [json.loads(line)["CLAWRELAY_TARGET"] for line in record.read_text().splitlines()]
    assert sorted(sent) == sorted(set(targets) - set(started))  # each program ran once in all


def test_an_interrupted_memory_file_attempt_is_resent_and_written_once(env: Env) -> None:
    """memory_file finds its id in the note, so resending an interrupted attempt is harmless."""
    routes(env, "          - memory_file: {timeout: 60s, wake: false}")
    (env.workspace / "memory").mkdir()
    from datetime import datetime

    note = env.workspace / "memory" / f"{datetime.now().astimezone():%Y-%m-%d}.md"
    with open(note, "a") as held:  # the writer waits for this lock: the attempt is under way
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = env.spawn("send", "xiaom", "write me once", "--json")
        wait_for(
            lambda: (
                [a["outcome"] for m in env.run("log", "--json").json() for a in m["attempts"]] == ["started"]
            )
        )
        proc.kill()
        proc.wait()
    (listed,) = env.run("outbox", "list", "--json").json()
    assert listed["status"] == "queued"
    (attempt,) = listed["attempts"]
    assert (attempt["reason"], attempt["retryable"]) == ("interrupted", True)
    r = env.run("outbox", "flush", "--json")
    assert r.code == 0, r.err
    assert [d["status"] for d in r.json()["retried"]] == ["delivered"]
    assert note.read_text().count(listed["id"]) == 1


def test_a_killed_exec_is_recorded_as_interrupted_and_its_program_dies(env: Env) -> None:
    pids = env.tmp / "hang.pids"
    routes(env, "          - memory_file: {}")
    proc = env.spawn("exec", "here", "--via", "local", "--", *program("hang.py", pids))
    wait_for(pids.exists)
    parent, child = map(int, pids.read_text().split())
    proc.kill()
    proc.wait()
    wait_for(lambda: not alive(parent) and not alive(child), 10)
    (record,) = env.run("log", "--json").json()
    assert (record["kind"], record["status"]) == ("exec", "ambiguous")
    assert [(a["outcome"], a["reason"]) for a in record["attempts"]] == [("ambiguous", "interrupted")]


def test_recovery_resends_a_sessions_send_only_inside_the_gateways_idempotency_window(tmp_path: Path) -> None:
    from clawrelay.recovery import recover

    journal = Journal(tmp_path)
    ids = {}
    for age_s in (10, 600):
        env = Envelope(sender="a", target="t", body="x")
        journal.add_message(env, expires_in_s=3600)
        journal.begin_run(env.id)
        journal.start_attempt(
            env.id,
            Attempt(
                step=1, transport="sessions_send", outcome=Outcome.STARTED, started_ms=now_ms() - age_s * 1000
            ),
        )
        ids[age_s] = env.id
    assert sorted(recover(journal)) == sorted(ids.values())
    assert journal.get(ids[10]).status is Status.QUEUED  # type: ignore[union-attr]
    assert journal.get(ids[600]).status is Status.AMBIGUOUS  # type: ignore[union-attr]
    assert recover(journal) == []  # once


def test_an_attempt_in_flight_is_left_alone_by_recovery(tmp_path: Path) -> None:
    from clawrelay.recovery import recover

    journal = Journal(tmp_path)
    env = Envelope(sender="a", target="t", body="x")
    claim = journal.claim(env.id)  # a live sender holds it
    journal.add_message(env, expires_in_s=3600)
    journal.start_attempt(
        env.id, Attempt(step=1, transport="command", outcome=Outcome.STARTED, started_ms=now_ms())
    )
    assert recover(Journal(tmp_path)) == []
    assert journal.get(env.id).attempts[0].outcome is Outcome.STARTED  # type: ignore[union-attr]
    assert claim is not None
    claim.release()
    assert recover(Journal(tmp_path)) == [env.id]
    assert os.listdir(tmp_path / "locks") == []


def test_an_interrupted_sessions_send_is_resent_and_the_gateway_runs_it_once(env: Env, gateway) -> None:  # type: ignore[no-untyped-def]
    """Killed while it waited for the reply: the retry reuses the idempotency key, so the
    gateway does not start a second run."""
    session = "agent:main:relay-interrupted"
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    gateways:
      gw: {{url: "{gateway.url}", token: "${{TEST_GW_TOKEN}}"}}
    targets:
      xiaom:
        session: "{session}"
        chain: [sessions_send: {{gateway: gw, wait_reply: true, timeout: 60s}}]
    """)
    )
    proc = env.spawn("send", "xiaom", "resend me safely [[delay=8]]", "--json", TEST_GW_TOKEN=gateway.token)
    wait_for(
        lambda: gateway.user_messages(session, "resend me safely"), 60
    )  # the run is under way over there
    proc.kill()
    proc.wait()
    (listed,) = env.run("outbox", "list", "--json").json()
    (attempt,) = listed["attempts"]
    assert (listed["status"], attempt["reason"], attempt["retryable"]) == ("queued", "interrupted", True)

    r = env.run("outbox", "flush", "--json", TEST_GW_TOKEN=gateway.token)
    assert r.code == 0, r.out + r.err
    (retried,) = r.json()["retried"]
    assert retried["via"] == "sessions_send"
    status = retried["attempts"][-1]["detail"].split(" in agent:")[0].rsplit(" ", 1)[-1]
    assert status in ("in_flight", "ok"), retried  # the gateway knew the key: no second run started
    # the first run's reply comes; a second run's message would be in the session before it
    wait_for(
        lambda: any(m.startswith("assistant:") and "resend me safely" in m for m in gateway.history(session)),
        60,
    )
    assert len(gateway.user_messages(session, listed["id"])) == 1
