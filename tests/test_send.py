"""`clawrelay send` end to end: the installed CLI, real files, real subprocesses as transports."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Env, alive, header, program, wait_for

from clawrelay.transports.memory_note import parse

# every test twice: in its own process, and inside a relay (`clawrelay serve`)
pytestmark = pytest.mark.usefixtures("relay_mode")


def chain(env: Env, steps: str, extra: str = "", target_extra: str = "") -> Path:
    return env.routes(
        header(env.workspace)
        + textwrap.dedent(
            extra
            + f"""
    targets:
      xiaom:
        aliases: [小m]
        host: here
{target_extra}        chain:
{steps}
    """
        )
    )


def flow(argv: list[str], timeout: str = "10s") -> str:
    return f"{{argv: {json.dumps(argv)}, timeout: {timeout}}}"


def test_memory_file_delivers_and_log_tells_the_path(env: Env) -> None:
    chain(env, "          - memory_file: {}")
    r = env.run("send", "xiaom", "backup finished on the VPS", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["status"] == "delivered" and doc["via"] == "memory_file" and doc["queued"] is False
    assert doc["target"] == "xiaom"
    assert [(a["transport"], a["outcome"], a["carrier"]) for a in doc["attempts"]] == [
        ("memory_file", "delivered", "local")
    ]
    note = env.note()
    assert re.search(
        rf"^### \d\d:\d\d:\d\d [+-]\d{{4}} · clawrelay message from tester · id {doc['id']}\n\n"
        r"> backup finished on the VPS\n",
        note,
        re.M,
    )
    log = env.run("log", "--json").json()
    assert [(m["id"], m["status"], m["via"]) for m in log] == [(doc["id"], "delivered", "memory_file")]


def test_chain_is_tried_in_order_and_falls_back(env: Env) -> None:
    calls = env.tmp / "calls.jsonl"
    chain(
        env,
        f"""          - command: {flow(program("record.py", calls, 3))}
          - command: {flow(program("record.py", calls, 75))}
          - command: {flow(program("record.py", calls, 0))}
          - memory_file: {{}}""",
    )
    r = env.run("send", "小m", "hello", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert [(a["step"], a["transport"], a["outcome"], a["reason"]) for a in doc["attempts"]] == [
        (1, "command", "failed", "exit_status"),
        (2, "command", "failed", "tempfail"),
        (2, "command", "failed", "tempfail"),  # exit 75 asks for a retry, and gets one
        (3, "command", "delivered", None),
    ]
    assert doc["via"] == "command"
    runs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [r_["body"] for r_ in runs] == ["hello"] * 4
    assert runs[0]["CLAWRELAY_ID"] == doc["id"] and runs[0]["CLAWRELAY_SENDER"] == "tester"
    assert runs[0]["CLAWRELAY_TARGET"] == "xiaom" and runs[0]["CLAWRELAY_HOPS"] == "1"
    assert not (env.workspace / "memory").exists()  # the chain stopped at the first delivery


def test_hung_transport_is_cut_at_its_timeout_with_its_group_and_the_next_one_used(env: Env) -> None:
    pids = env.tmp / "hang.pids"
    chain(
        env,
        f"""          - command: {flow(program("hang.py", pids), "1500ms")}
          - memory_file: {{}}""",
    )
    t0 = time.monotonic()
    r = env.run("send", "xiaom", "are you there?", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    first, second = doc["attempts"]
    assert (first["outcome"], first["reason"]) == ("ambiguous", "timeout")  # it had the message
    assert 1400 <= first["elapsed_ms"] < 5000
    assert (second["transport"], second["outcome"]) == ("memory_file", "delivered")
    assert time.monotonic() - t0 < 30
    parent, child = map(int, pids.read_text().split())
    wait_for(lambda: not alive(parent) and not alive(child), 5)


def test_stop_on_ambiguous_keeps_the_chain_from_going_on(env: Env) -> None:
    pids = env.tmp / "hang.pids"
    chain(
        env,
        f"""          - command: {flow(program("hang.py", pids), "1s")}
          - memory_file: {{}}""",
        target_extra="        on_ambiguous: stop\n",
    )
    r = env.run("send", "xiaom", "maybe", "--json")
    assert r.code == 4, r.err
    doc = r.json()
    assert doc["status"] == "ambiguous" and doc["via"] is None and doc["queued"] is False
    assert [a["transport"] for a in doc["attempts"]] == ["command"]
    assert not (env.workspace / "memory").exists()
    listed = env.run("outbox", "list", "--json").json()
    assert [(m["id"], m["status"]) for m in listed] == [(doc["id"], "ambiguous")]
    # `outbox retry` leaves an ambiguous message alone: it may have arrived
    again = env.run("outbox", "retry", "--now", "--json")
    assert again.json()["skipped"] == [{"id": doc["id"], "reason": "ambiguous"}]


def test_a_timeout_before_sending_is_a_retryable_failure_not_ambiguous(env: Env) -> None:
    """memory_file waiting for the note's lock has sent nothing: `failed/timeout`, then the next rung."""
    import fcntl
    from datetime import datetime

    chain(
        env,
        """          - memory_file: {timeout: 700ms, retries: 0}
          - command: {argv: ["true"]}""",
    )
    note = env.workspace / "memory" / f"{datetime.now().astimezone():%Y-%m-%d}.md"
    note.parent.mkdir()
    with open(note, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = env.run("send", "xiaom", "blocked", "--json")
    assert r.code == 0, r.err
    first = r.json()["attempts"][0]
    assert (first["outcome"], first["reason"], first["retryable"]) == ("failed", "timeout", True)
    assert note.read_text() == ""


def test_retries_only_what_can_succeed_on_retry(env: Env) -> None:
    counter = env.tmp / "count"
    chain(
        env, f"          - command: {{argv: {json.dumps(program('flaky.py', counter, 2, 75))}, retries: 2}}"
    )
    r = env.run("send", "xiaom", "flap", "--json")
    assert r.code == 0, r.err
    assert [(a["outcome"], a["reason"]) for a in r.json()["attempts"]] == [
        ("failed", "tempfail"),
        ("failed", "tempfail"),
        ("delivered", None),
    ]
    assert counter.read_text() == "3"

    counter.unlink()
    chain(env, f"          - command: {{argv: {json.dumps(program('flaky.py', counter, 2, 1))}, retries: 3}}")
    r = env.run("send", "xiaom", "broken", "--json")
    assert r.code == 1
    assert [(a["outcome"], a["reason"], a["retryable"]) for a in r.json()["attempts"]] == [
        ("failed", "exit_status", False)
    ]
    assert counter.read_text() == "1"  # a permanent failure is never retried


def test_deadline_is_shared_by_the_chain(env: Env) -> None:
    pids = env.tmp / "hang.pids"
    chain(
        env,
        f"""          - command: {flow(program("hang.py", pids), "30s")}
          - memory_file: {{}}""",
        target_extra="        deadline: 1500ms\n",
    )
    r = env.run("send", "xiaom", "late", "--json")
    assert r.code == 4
    first, second = r.json()["attempts"]
    assert first["reason"] == "timeout" and first["elapsed_ms"] < 5000
    assert (second["transport"], second["outcome"], second["reason"]) == ("memory_file", "failed", "deadline")


def test_all_failed_is_kept_in_the_outbox_then_delivered_by_retry(env: Env) -> None:
    flag, out = env.tmp / "up", env.tmp / "out.txt"
    chain(env, f"          - command: {{argv: {json.dumps(program('when_file.py', flag, out))}, retries: 0}}")
    r = env.run("send", "xiaom", "wait for me", "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["status"] == "failed" and doc["queued"] is True and doc["via"] is None
    listed = env.run("outbox", "list", "--json").json()
    assert [(m["id"], m["status"], m["in_flight"]) for m in listed] == [(doc["id"], "queued", False)]

    # automatic retries respect the backoff; --now does not wait for it
    early = env.run("outbox", "retry", "--json")
    assert early.code == 0 and early.json()["skipped"][0]["reason"] == "backoff"
    still_down = env.run("outbox", "retry", "--now", "--json")
    assert still_down.code == 1 and still_down.json()["retried"][0]["queued"] is True

    flag.touch()
    up = env.run("outbox", "retry", doc["id"][:13], "--json")
    assert up.code == 0, up.err
    assert up.json()["retried"][0]["status"] == "delivered"
    assert out.read_text() == "wait for me\n"
    assert env.run("outbox", "list", "--json").json() == []
    (record,) = env.run("log", "--json").json()
    assert record["status"] == "delivered" and record["runs"] == 3
    assert [(a["run"], a["outcome"]) for a in record["attempts"]] == [
        (1, "failed"),
        (2, "failed"),
        (3, "delivered"),
    ]


def test_two_retries_at_once_deliver_a_message_exactly_once(env: Env) -> None:
    flag, out = env.tmp / "up", env.tmp / "out.txt"
    chain(env, f"          - command: {{argv: {json.dumps(program('when_file.py', flag, out))}, retries: 0}}")
    assert env.run("send", "xiaom", "once").code == 1
    flag.touch()
    procs = [env.spawn("outbox", "retry", "--now", "--json") for _ in range(3)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert out.read_text() == "once\n"
    delivered = [d for r in results for d in r["retried"] if d["status"] == "delivered"]
    assert len(delivered) == 1


@pytest.mark.slow
def test_twenty_concurrent_senders_write_twenty_whole_distinct_entries(env: Env) -> None:
    chain(env, "          - memory_file: {timeout: 60s}")
    bodies = [f"message {i}\n" + f"line two of {i} " * 40 + f"\nend {i}" for i in range(20)]
    procs = [env.spawn("send", "xiaom", body, "--json") for body in bodies]
    docs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        docs.append(json.loads(stdout))
    note = env.note()
    entries = parse(note)
    ids, texts = [e.id for e in entries], [e.body for e in entries]
    assert sorted(ids) == sorted(d["id"] for d in docs) and len(set(ids)) == 20
    assert sorted(texts) == sorted(b.rstrip() for b in bodies)


def test_dry_run_prints_the_plan_and_sends_nothing(env: Env) -> None:
    chain(
        env,
        """          - sessions_send: {timeout: 3s}
          - memory_file: {}""",
        extra='    gateways:\n      gw: {url: "ws://127.0.0.1:9"}\n',
    )
    r = env.run("send", "xiaom", "x", "--dry-run", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["dry_run"] is True
    assert [(s["transport"], s["timeout_s"], s["carriers"]) for s in doc["plan"]] == [
        ("sessions_send", 3.0, []),
        ("memory_file", 10.0, ["local"]),
    ]
    human = env.run("send", "xiaom", "--dry-run")
    assert "nothing sent" in human.out and "memory_file" in human.out
    assert env.run("log", "--json").json() == []
    assert not (env.workspace / "memory").exists()


def test_via_forces_one_transport(env: Env) -> None:
    chain(
        env,
        """          - command: {argv: ["false"]}
          - memory_file: {}""",
    )
    r = env.run("send", "xiaom", "direct", "--via", "memory_file", "--json")
    assert r.code == 0, r.err
    assert [a["transport"] for a in r.json()["attempts"]] == ["memory_file"]
    bad = env.run("send", "xiaom", "x", "--via", "telegram")
    assert bad.code == 2 and "has no telegram step" in bad.err
    assert len(env.run("log", "--json").json()) == 1  # the refused send journaled nothing


def test_group_send_gives_one_result_each_and_exit_4_when_partial(env: Env) -> None:
    env.routes(
        header(env.workspace)
        + textwrap.dedent("""
    targets:
      a: {host: here, chain: [memory_file: {}]}
      b: {chain: [command: {argv: ["false"]}]}
    groups:
      all: [a, b]
    """)
    )
    r = env.run("send", "@all", "to everyone", "--json")
    assert r.code == 4
    docs = r.json()
    assert [(d["target"], d["status"]) for d in docs] == [("a", "delivered"), ("b", "failed")]
    assert len({d["id"] for d in docs}) == 2
    # one batch: the same in the send's answer and in the journal
    assert docs[0]["batch"] == docs[1]["batch"] and docs[0]["batch"]["to"] == "@all"
    assert [rec["batch"] for rec in env.run("log", "--json").json()] == [docs[0]["batch"]] * 2
    assert "batch" not in env.run("send", "a", "alone", "--json").json()
    assert "message to @all (batch " in env.run("log").out and "1 delivered, 1 queued" in env.run("log").out


def test_stdin_message_and_human_output(env: Env) -> None:
    chain(
        env,
        """          - command: {argv: ["false"]}
          - memory_file: {}""",
    )
    r = env.run("send", "xiaom", input="from a pipe\n")
    assert r.code == 0, r.err
    assert "✗ 1 command" in r.out and "✓ 2 memory_file" in r.out
    assert "delivered to xiaom via memory_file" in r.out
    assert "from a pipe" in env.note()
    explained = env.run("send", "xiaom", "again", "--explain")
    assert re.search(r"✗ 1 command\s+failed \(exit_status\)\s+\d+ ms\s+local\s+false exited 1", explained.out)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["send", "xiaoz", "hi"], 3, "unknown target 'xiaoz'"),
        (["send", "@nobody", "hi"], 3, "unknown group '@nobody'"),
        (["send", "xiaom", "   "], 2, "empty message"),
        (["send", "xiaom", ""], 2, "empty message"),
        (["send", "xiaom", "hi", "--deadline", "soon"], 2, "--deadline"),
        (["outbox", "retry", "0000"], 1, "no message '0000'"),
    ],
)
def test_bad_input_is_one_clear_line_and_the_right_exit_code(
    env: Env, args: list[str], code: int, message: str
) -> None:
    chain(env, "          - memory_file: {}")
    r = env.run(*args)
    assert r.code == code, (r.out, r.err)
    assert message in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert env.run("log", "--json").json() == []


def test_bad_config_names_file_and_line_and_sends_nothing(env: Env) -> None:
    path = chain(env, "          - memory_file: {timout: 5s}")
    r = env.run("send", "xiaom", "hi")
    assert r.code == 2
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "timout" in text)
    assert (
        r.err.strip()
        == f"clawrelay: {path.name}:{line}: targets.xiaom.chain[0].memory_file.timout: unknown key"
    )
    assert env.run("routes", "check").code == 2
    assert not env.home.joinpath("journal.db").exists() or env.run("log", "--json").json() == []


def test_hop_limit_refuses_a_message_relayed_too_often(env: Env) -> None:
    chain(env, "          - memory_file: {}", extra="    defaults: {max_hops: 3}\n")
    r = env.run("send", "xiaom", "loop?", CLAWRELAY_HOPS="3")
    assert r.code == 2 and "relayed 3 times" in r.err
    assert env.run("send", "xiaom", "fine", CLAWRELAY_HOPS="2").code == 0


def test_purge_takes_a_message_out_of_the_outbox_and_keeps_its_record(env: Env) -> None:
    chain(env, '          - command: {argv: ["false"]}')
    doc = env.run("send", "xiaom", "never mind", "--json").json()
    r = env.run("outbox", "purge", doc["id"])
    assert r.code == 0 and "purged" in r.out
    assert env.run("outbox", "list", "--json").json() == []
    assert env.run("log", "--json").json()[0]["status"] == "purged"
    again = env.run("outbox", "purge", doc["id"])
    assert again.code == 2 and "not in the outbox" in again.err


def test_expired_messages_become_dead_letters(env: Env) -> None:
    chain(env, '          - command: {argv: ["false"]}', extra="    outbox: {expire: 1s}\n")
    doc = env.run("send", "xiaom", "too late", "--json").json()
    time.sleep(1.2)
    assert env.run("outbox", "list", "--json").json() == []
    (dead,) = env.run("outbox", "list", "--all", "--json").json()
    assert (dead["id"], dead["status"]) == (doc["id"], "dead")
    assert env.run("outbox", "retry", "--now", "--json").json()["retried"] == []
