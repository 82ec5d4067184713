"""The fleet without a server (the fast layer): what routes check says of `fleet:`, the `fleet`
commands without a fleet or without a Redis, and the pieces of the shared outbox that need no
Redis (its keys, the attempt marker, a result, settling a result into the sender's journal)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Env
from peer import free_port

from clawrelay.envelope import Envelope
from clawrelay.fleet import keys
from clawrelay.fleet import shared_outbox as shared
from clawrelay.journal import Journal, MessageRecord
from clawrelay.outcome import Outcome, Status

TARGETS = 'targets:\n  t: {chain: [command: {argv: ["true"]}]}\n'


def routes(env: Env, fleet: str, *, top: str = "") -> None:
    env.routes(
        f"version: 1\nself: me\n{top}{TARGETS}fleet:\n"
        + "".join(f"  {line}\n" for line in fleet.splitlines())
    )


def check_errors(env: Env) -> list[str]:
    r = env.run("routes", "check", "--json")
    assert r.code == (2 if r.json()["errors"] else 0), r  # type: ignore[index]
    return r.json()["errors"]  # type: ignore[index,no-any-return]


# -- routes check ----------------------------------------------------------------------------------


def test_routes_check_accepts_a_fleet_and_refuses_a_ttl_shorter_than_two_heartbeats(env: Env) -> None:
    env.vars["FLEET_PW"] = "set-but-unused"
    routes(env, 'redis: "redis://:${FLEET_PW}@127.0.0.1:6379/0"\nheartbeat: 2s\nttl: 4s\nnotify: t')
    assert check_errors(env) == []
    routes(env, 'redis: "redis://:${FLEET_PW}@127.0.0.1:6379/0"\nheartbeat: 2s\nttl: 3.9s')
    errors = check_errors(env)
    assert len(errors) == 1
    assert re.fullmatch(r"routes\.yaml:\d+: fleet\.ttl: a ttl of 3\.9s .*twice the heartbeat", errors[0]), (
        errors
    )
    human = env.run("routes", "check")
    assert human.code == 2 and "fleet.ttl" in human.err and "Traceback" not in human.err


def test_routes_check_refuses_an_unknown_notify_target_a_tiny_heartbeat_and_a_bad_node_name(env: Env) -> None:
    routes(env, 'redis: "redis://127.0.0.1:6379/0"\nnotify: nobody')
    assert any("fleet.notify: unknown target 'nobody' (known: t)" in e for e in check_errors(env))
    routes(env, 'redis: "redis://127.0.0.1:6379/0"\nheartbeat: 0.1s\nttl: 1s')
    assert any("fleet.heartbeat" in e for e in check_errors(env))
    routes(env, 'redis: "redis://127.0.0.1:6379/0"\nnode: "two words"')
    assert any("fleet.node" in e for e in check_errors(env))


@pytest.mark.parametrize("scheme", ["http", "tcp", "127.0.0.1"])
def test_routes_check_refuses_a_url_that_is_not_redis_and_does_not_echo_its_password(
    env: Env, scheme: str
) -> None:
    password = "S3cretLiteralPw9"
    url = f"{scheme}://:{password}@127.0.0.1:6379/0" if "." not in scheme else f"{password}@{scheme}:6379"
    routes(env, f'redis: "{url}"')
    errors = check_errors(env)
    assert len(errors) == 1 and "fleet.redis: not a Redis URL" in errors[0], errors
    for args in (["routes", "check"], ["routes", "check", "--json"], ["fleet", "status"], ["send", "t", "x"]):
        r = env.run(*args)
        assert r.code == 2, (args, r)
        assert password not in r.out + r.err, (args, r)


def test_routes_show_masks_a_literal_redis_password(env: Env) -> None:
    password = "LiteralRedisPw77"
    routes(env, f'redis: "redis://:{password}@127.0.0.1:6379/0"')
    for args in (["routes", "show"], ["routes", "show", "--json"], ["routes", "check", "--json"]):
        r = env.run(*args)
        assert r.code == 0, (args, r)
        assert password not in r.out + r.err, (args, r)
    assert "redis://:***@127.0.0.1:6379/0" in env.run("routes", "show").out


@pytest.mark.parametrize("password", ["Lit3ral/Passw0rdXYZ", "Lit3ral@Passw0rd"])
def test_routes_show_masks_a_literal_redis_password_a_url_parser_misreads(env: Env, password: str) -> None:
    routes(env, f'redis: "redis://:{password}@127.0.0.1:6379/0"')
    for args in (["routes", "show"], ["routes", "show", "--json"], ["routes", "check", "--json"]):
        r = env.run(*args)
        assert password not in r.out + r.err, (args, r)
    assert any("literal password" in w for w in env.run("routes", "check", "--json").json()["warnings"])  # type: ignore[index]


def test_an_offered_message_is_taken_back_by_retry_and_purge_only_when_asked(env: Env) -> None:
    """`--take-back` withdraws the message from the fleet first, so Redis must answer; with its
    Redis gone for good and `fleet:` taken out of routes.yaml, it makes the message this
    machine's again."""
    env.home.mkdir(parents=True, exist_ok=True)
    journal = Journal(env.home)
    try:
        first, second = _offered(journal, "one"), _offered(journal, "two")
    finally:
        journal.close()
    routes(env, 'redis: "redis://:pw@127.0.0.1:1/0"')
    for args in (["outbox", "retry", first], ["outbox", "purge", second]):
        r = env.run(*args)
        assert r.code == 2 and "offered to the fleet" in r.err and "--take-back" in r.err, (args, r)
    for args in (["outbox", "retry", first, "--take-back"], ["outbox", "purge", second, "--take-back"]):
        r = env.run(*args)
        assert r.code == 1 and "cannot reach Redis" in r.err and "take `fleet:` out" in r.err, (args, r)
        assert "Traceback" not in r.err
    assert {m["status"] for m in env.run("outbox", "list", "--json").json()} == {"offered"}  # type: ignore[union-attr,index]
    env.routes(f"version: 1\nself: me\n{TARGETS}")  # its Redis gone for good: no fleet any more
    r = env.run("outbox", "retry", first, "--take-back", "--json")
    assert r.code == 0 and r.json()["retried"][0]["status"] == "delivered", r  # type: ignore[index]
    r = env.run("outbox", "purge", second, "--take-back")
    assert r.code == 0, r
    assert env.run("outbox", "list", "--json").json() == []


# -- the fleet commands without a fleet, or without a Redis ---------------------------------------


def test_fleet_help_lists_status_and_elect(env: Env) -> None:
    r = env.run("fleet", "--help")
    assert r.code == 0
    assert re.search(r"^\s+status\s", r.out, re.M) and re.search(r"^\s+elect\s", r.out, re.M), r.out
    top = env.run("--help")
    assert re.search(r"^\s+fleet\s", top.out, re.M), top.out


@pytest.mark.parametrize("command", ["status", "elect"])
def test_fleet_commands_without_a_fleet_section_exit_2_no_fleet(env: Env, command: str) -> None:
    env.routes(f"version: 1\nself: me\n{TARGETS}")
    r = env.run("fleet", command)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and "no `fleet:` section" in r.err, r.err
    j = env.run("fleet", command, "--json")
    assert j.code == 2
    assert j.json()["error"]["reason"] == "no_fleet"  # type: ignore[index]


def test_fleet_status_with_nothing_listening_exits_1_fleet_unreachable_without_the_password(env: Env) -> None:
    port = free_port()  # nothing listens: refused at once
    password = "UnreachablePw123"
    env.vars["FLEET_PW"] = password
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{port}/0"')
    for command in ("status", "elect"):
        r = env.run("fleet", command)
        assert r.code == 1, r
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and f"cannot reach Redis at 127.0.0.1:{port}" in lines[0], r.err
        assert password not in r.out + r.err
    j = env.run("fleet", "status", "--json")
    assert j.code == 1 and j.json()["error"]["reason"] == "fleet_unreachable"  # type: ignore[index]
    assert password not in j.out + j.err


def test_an_at_sign_in_the_query_is_not_taken_for_a_literal_password(env: Env) -> None:
    """The userinfo ends at the last `@` before the query: `client_name=relay@box` after a
    `${VAR}` password is no literal password, and the host is not masked as one."""
    port = free_port()
    env.vars["FLEET_PW"] = "QueryAtPw12345"
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{port}/0?client_name=relay@box"')
    r = env.run("routes", "check", "--json")
    assert r.code == 0 and r.json()["warnings"] == [], r  # type: ignore[index]
    r = env.run("fleet", "status")
    assert r.code == 1 and f"cannot reach Redis at 127.0.0.1:{port}" in r.err, r.err
    routes(env, f'redis: "redis://127.0.0.1:{port}/0?client_name=relay@box"')  # no password at all
    r = env.run("routes", "check", "--json")
    assert r.code == 0 and r.json()["warnings"] == [], r  # type: ignore[index]
    r = env.run("fleet", "status")
    assert r.code == 1 and f"cannot reach Redis at 127.0.0.1:{port}" in r.err, r.err
    literal = "LiteralQueryPw99"
    routes(env, f'redis: "redis://:{literal}@127.0.0.1:{port}/0?client_name=relay@box"')
    r = env.run("routes", "check", "--json")
    assert any("literal password" in w for w in r.json()["warnings"]), r  # type: ignore[index]
    r = env.run("routes", "show")
    assert r.code == 0 and literal not in r.out and f"127.0.0.1:{port}" in r.out, r.out


def test_doctor_says_the_fleets_redis_does_not_answer_with_its_fix_and_no_password(env: Env) -> None:
    port = free_port()
    password = "DoctorPw12345"
    env.vars["FLEET_PW"] = password
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{port}/0"')
    r = env.run("doctor", "--json")
    assert r.code != 0, r
    fleet = [c for c in r.json()["checks"] if c["subject"] == "fleet"]  # type: ignore[index]
    assert len(fleet) == 1 and not fleet[0]["ok"], r.out
    assert fleet[0]["reason"] == "fleet_unreachable" and f"127.0.0.1:{port}" in fleet[0]["detail"], fleet
    assert fleet[0]["fix"], fleet
    assert password not in r.out + r.err


def test_fleet_status_with_its_password_variable_unset_exits_2_naming_it(env: Env) -> None:
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{free_port()}/0"')
    r = env.run("fleet", "status", "--json")
    assert r.code == 2, r
    error = r.json()["error"]  # type: ignore[index]
    assert "FLEET_PW" in error["message"] and "is not set" in error["message"], error


def test_a_send_that_has_nothing_to_do_with_the_fleet_works_without_its_password_variable(env: Env) -> None:
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{free_port()}/0"')
    r = env.run("send", "t", "hello")
    assert r.code == 0, r


def test_the_fleet_password_may_come_from_the_secrets_file(env: Env) -> None:
    secrets = env.tmp / "secrets.env"
    secrets.write_text("FLEET_PW=FromTheSecretsFile1\n")
    secrets.chmod(0o600)
    routes(env, f'redis: "redis://:${{FLEET_PW}}@127.0.0.1:{free_port()}/0"', top="secrets: ./secrets.env\n")
    r = env.run("fleet", "status", "--json")
    assert r.code == 1 and r.json()["error"]["reason"] == "fleet_unreachable", r  # type: ignore[index]


# -- the shared outbox's pieces ---------------------------------------------------------------------


def test_every_key_shares_the_fleet_hash_tag() -> None:
    mid, target = "01a1fc95-b873-7000-8000-000000000001", "xiaom"
    made = [
        keys.node("a"),
        keys.SEEN,
        keys.MEMBERS,
        keys.LEADER,
        keys.EPOCH,
        keys.YIELDED,
        keys.EVENTS,
        keys.STREAMS,
        keys.outbox(target),
        keys.offered(mid),
        keys.lock(mid),
        keys.attempt(mid),
        keys.result(mid),
    ]
    for key in made:
        # Redis Cluster hashes the text between the first `{` and the next `}`: the same for all
        assert key.startswith("clawrelay:{fleet}:") and re.findall(r"\{([^}]*)\}", key)[0] == "fleet", key
    assert len(set(made)) == len(made)
    assert keys.node("") + "a" == keys.node("a")  # the prefix MEMBERSHIP is given


def test_an_attempt_marker_round_trips_and_a_malformed_one_is_none() -> None:
    m = shared.Marker("b", "a1b2c3", 1_700_000_000_000, ["sessions_send", "memory_file"])
    assert shared.Marker.parse('{"started_ms": 1700000000000, ' + m.tail()) == m  # as MARK stores it
    assert shared.Marker.parse('{"node": "b", "started_ms": 5, "plan": []}') == shared.Marker("b", "", 5, [])
    for raw in ("", "not json", "[]", '{"node": "b"}', '{"node": "b", "started_ms": "x", "plan": []}'):
        assert shared.Marker.parse(raw) is None, raw


def test_a_result_is_read_from_its_hash_and_an_empty_hash_is_none() -> None:
    assert shared.Result.of({}) is None
    r = shared.Result.of({"status": "delivered", "node": "b", "via": "command", "at_ms": "12"})
    assert r == shared.Result("delivered", "b", "command", 12, "", "")


def test_an_entry_carries_the_message_to_the_relay_that_delivers_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    try:
        env = Envelope(sender="a", target="t", body="line one\nline two: ünïcode", hops=2)
        journal.add_message(env, expires_in_s=3600, only_via="command")
        record = journal.get(env.id)
        assert record is not None
        fields = shared.entry_of(record, "a")
        assert all(isinstance(v, str) for v in fields.values())  # what XADD takes
        got, only_via, expires_ms = shared.envelope_of(fields)
        assert (got.id, got.sender, got.target, got.body, got.hops, got.created_ms) == (
            env.id,
            "a",
            "t",
            env.body,
            2,
            env.created_ms,
        )
        assert only_via == "command" and expires_ms == record.expires_ms
        with pytest.raises(KeyError):
            shared.envelope_of({k: v for k, v in fields.items() if k != "body"})
    finally:
        journal.close()


def settle(journal: Journal, record: MessageRecord, result: shared.Result, me: str) -> bool:
    """`settlement` written, as the sender's heartbeat writes it; whether there was one."""
    run = shared.settlement(record, result, me)
    if run is not None:
        journal.record_elsewhere([run])
    return run is not None


def _offered(journal: Journal, body: str = "hi") -> str:
    env = Envelope(sender="a", target="t", body=body)
    journal.add_message(env, expires_in_s=3600)
    journal.set_status(env.id, Status.OFFERED)
    return env.id


def test_settling_a_delivered_result_writes_who_delivered_it_into_the_senders_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    try:
        mid = _offered(journal)
        record = journal.get(mid)
        assert record is not None
        assert settle(journal, record, shared.Result("delivered", "b", "command", 1234, ""), "a")
        after = journal.get(mid)
        assert after is not None and after.status is Status.DELIVERED and after.via == "command"
        last = after.attempts[-1]
        assert (last.carrier, last.transport, last.outcome) == ("fleet:b", "command", Outcome.DELIVERED)
        assert last.detail == "delivered by b via command" and last.started_ms == 1234
        assert after.runs == record.runs + 1
        assert mid not in [r.id for r in journal.outbox()]

        # a later, lesser outcome does not undo a delivery
        assert not settle(journal, after, shared.Result("ambiguous", "c", "command", 0, "x"), "a")
        assert journal.get(mid).status is Status.DELIVERED  # type: ignore[union-attr]
    finally:
        journal.close()


def test_settling_other_results(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    try:
        # delivered from here: this journal has the attempts already (it says delivered), nothing
        # is added
        mine = _offered(journal)
        journal.set_status(mine, Status.DELIVERED)
        rec = journal.get(mine)
        assert not settle(journal, rec, shared.Result("delivered", "a", "command", 0, ""), "a")  # type: ignore[arg-type]
        assert journal.get(mine).attempts == []  # type: ignore[union-attr]

        # a result in this node's name for a message this journal still has offered: a relay that
        # took over from this one when it died mid-attempt called it ambiguous; said here, not
        # dropped (dropping it and forgetting it made the next heartbeat offer it again)
        died = _offered(journal)
        rec = journal.get(died)
        result = shared.Result("ambiguous", "a", "command", 0, "a stopped while delivering it")
        assert settle(journal, rec, result, "a")  # type: ignore[arg-type]
        assert journal.get(died).status is Status.AMBIGUOUS  # type: ignore[union-attr]

        amb = _offered(journal)
        result = shared.Result(
            "ambiguous", "b", "sessions_send", 0, "interrupted", also="c: delivered via command"
        )
        assert settle(journal, journal.get(amb), result, "a")  # type: ignore[arg-type]
        rec = journal.get(amb)
        assert rec is not None and rec.status is Status.AMBIGUOUS
        assert rec.attempts[-1].outcome is Outcome.AMBIGUOUS and rec.attempts[-1].reason == "ambiguous"
        assert (
            rec.attempts[-1].detail
            == "ambiguous by b via sessions_send: interrupted; also c: delivered via command"
        )

        dead = _offered(journal)
        assert settle(journal, journal.get(dead), shared.Result("dead", "a", "", 0, "expired"), "a")  # type: ignore[arg-type]
        rec = journal.get(dead)
        assert rec is not None and rec.status is Status.DEAD
        assert rec.attempts[-1].reason == "expired" and rec.attempts[-1].carrier == "fleet:a"

        odd = _offered(journal)
        assert not settle(journal, journal.get(odd), shared.Result("weird", "b", "", 0, ""), "a")  # type: ignore[arg-type]
        assert journal.get(odd).status is Status.OFFERED  # type: ignore[union-attr]
    finally:
        journal.close()


def test_a_redis_failure_is_said_without_the_url_or_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from redis import exceptions as rx

    from clawrelay.config.model import Fleet
    from clawrelay.fleet.connect import FleetAuth, FleetUnreachable, translate, where

    password = "NeverPrintedPw42"
    monkeypatch.setenv("UNIT_FLEET_PW", password)
    fleet = Fleet(redis="redis://user:${UNIT_FLEET_PW}@10.0.0.5:6380/0")
    assert where(fleet.redis) == "10.0.0.5:6380"
    assert where("unix:///run/redis.sock") == "/run/redis.sock"
    auth = translate(rx.AuthenticationError("WRONGPASS invalid username-password pair"), fleet)
    assert isinstance(auth, FleetAuth) and auth.exit_code == 2 and auth.reason == "fleet_auth"
    down = translate(rx.ConnectionError(f"Error 111 connecting to redis://user:{password}@10.0.0.5"), fleet)
    assert isinstance(down, FleetUnreachable) and down.exit_code == 1 and down.reason == "fleet_unreachable"
    other = translate(rx.ResponseError("ERR unknown command"), fleet)
    assert other.reason == "fleet_error"
    for e in (auth, down, other):
        assert "10.0.0.5:6380" in e.message and password not in e.message, e.message


@pytest.mark.parametrize(
    "bad",
    [{"id": "../../etc/passwd"}, {"id": "01a2-not-an-id"}, {"body": "nul\x00inside"}],
)
def test_an_entry_no_clawrelay_wrote_is_refused(bad: dict[str, str]) -> None:
    """Its id names a lock file and a journal row on the relay that reads it."""
    from clawrelay.errors import ClawrelayError

    fields = {"id": Envelope(sender="a", target="t", body="x").id, "sender": "a", "target": "t", "body": "ok"}
    with pytest.raises((ValueError, ClawrelayError)):
        shared.envelope_of({**fields, **bad})
    shared.envelope_of(fields)  # and a good one is taken
