"""Secrets that do not depend on the process's environment: `secrets: ./secrets.env` in routes.yaml.

An OpenClaw agent's `exec` tool runs clawrelay with the gateway service's environment, where the
tokens exported in the user's shell are unset. A `${VAR}` is read from the environment first, then
from the dotenv file routes.yaml names; the file is refused unless it is a regular file of the
user's own, mode 0600; doctor and `routes show` say where each secret came from, never its value.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bot_api import ALICE, TOKEN, TOKEN_ENV, FakeTelegram
from conftest import Env, Result, header
from peer import Gateway

from clawrelay import secrets
from clawrelay.secrets_file import SecretsFile

GW_ENV = "TEST_FILE_GW_TOKEN"


@pytest.fixture
def bot(env: Env) -> Iterator[FakeTelegram]:
    server = FakeTelegram(env.tmp / "bot-api")
    yield server
    server.stop()


def secrets_file(env: Env, text: str, mode: int = 0o600, name: str = "secrets.env") -> Path:
    path = env.tmp / name
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(mode)
    return path


def bot_routes(
    env: Env, bot: FakeTelegram, secrets_key: str = "secrets: ./secrets.env", extra: str = ""
) -> Path:
    return env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    {secrets_key}
    telegram: {{token: "${{{TOKEN_ENV}}}", base_url: "{bot.base_url}"}}
    {extra}
    targets:
      human:
        chain:
          - telegram: {{chat_id: {ALICE}, retries: 0}}
    """)
    )


def everything(env: Env, *results: Result) -> str:
    """What a user or a reader of the state dir could see: output, `log --json`, every state file."""
    texts = [x for r in results for x in (r.out, r.err)]
    texts.append(env.run("log", "--json").out)
    for path in env.home.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    for db in env.home.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            texts.append("\n".join(conn.iterdump()))
    return "\n".join(texts)


def secrets_line(env: Env) -> str:
    """`routes.yaml:N: secrets` for the `secrets:` key of the test's routes.yaml (found in the
    working directory, so named as it was found)."""
    lines = (env.tmp / "routes.yaml").read_text().splitlines()
    n = next(i for i, line in enumerate(lines, 1) if line.startswith("secrets:"))
    return f"routes.yaml:{n}: secrets"


def one_error_line(r: Result) -> str:
    assert "Traceback" not in r.err + r.out, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


# -- a send -----------------------------------------------------------------------------------------


def test_a_token_only_in_the_file_is_used_and_never_shown(env: Env, bot: FakeTelegram) -> None:
    path = secrets_file(
        env,
        f"""
    # the bot, for the agent's exec tool (no shell profile there)
    export {TOKEN_ENV}="{TOKEN}"
    """,
    )
    bot_routes(env, bot)
    assert TOKEN_ENV not in env.vars
    r = env.run("send", "human", "the backup finished", "--json", CLAWRELAY_LOG="debug")
    assert r.code == 0, r.err
    doc = r.json()
    assert isinstance(doc, dict) and doc["status"] == "delivered" and doc["via"] == "telegram"
    assert len(bot.messages()) == 1 and all(req["path_ok"] for req in bot.requests())
    assert "/bot***/" in r.err  # the debug log shows the requests, the token from the file masked
    assert TOKEN not in everything(env, r)
    assert path.stat().st_mode & 0o777 == 0o600  # left as it was


def test_the_environment_wins_over_the_file(env: Env, bot: FakeTelegram) -> None:
    wrong = TOKEN[:-1] + "Q"
    secrets_file(env, f"{TOKEN_ENV}={wrong}\n")
    bot_routes(env, bot)
    r = env.run("send", "human", "hi", "--json", **{TOKEN_ENV: TOKEN})
    assert r.code == 0, r.err
    show = env.run("routes", "show", "--json", **{TOKEN_ENV: TOKEN})
    assert show.json()["routes"]["telegram"]["token"] == f"${{{TOKEN_ENV}}} (set from the environment)"
    assert TOKEN not in everything(env, r, show) and wrong not in everything(env, r, show)


def test_a_secret_set_nowhere_fails_its_transport_and_the_message_waits(env: Env, bot: FakeTelegram) -> None:
    secrets_file(env, "OTHER=value-of-another-secret\n")
    bot_routes(env, bot)
    r = env.run("send", "human", "hi", "--json")
    assert r.code == 1, r.err
    (attempt,) = r.json()["attempts"]
    assert attempt["reason"] == "config"
    assert (
        f"environment variable {TOKEN_ENV} is not set, nor in {env.tmp / 'secrets.env'}" in attempt["detail"]
    )
    assert bot.requests() == []
    assert "value-of-another-secret" not in everything(env, r)


def test_a_missing_file_fails_only_the_transport_that_needs_it(env: Env, bot: FakeTelegram) -> None:
    routes = bot_routes(env, bot)
    routes.write_text(routes.read_text().rstrip() + "\n  note: {host: here, chain: [memory_file]}\n")
    note = env.run("send", "note", "a memory note needs no secret")
    assert note.code == 0, note.err
    r = env.run("send", "human", "hi", "--json")
    assert r.code == 1
    assert f"and {env.tmp / 'secrets.env'} does not exist" in r.json()["attempts"][0]["detail"]
    check = env.run("routes", "check")
    assert check.code == 0
    assert f"warning: secrets: {env.tmp / 'secrets.env'} does not exist" in check.err


def test_gateway_tokens_from_the_file_named_or_openclaws_own(env: Env, gateway: Gateway) -> None:
    """A `${VAR}` token and, for a gateway without a `token` key, OPENCLAW_GATEWAY_TOKEN: both from the file."""
    (env.tmp / "conf").mkdir()
    secrets_file(
        env, f"{GW_ENV}='{gateway.token}'\nOPENCLAW_GATEWAY_TOKEN={gateway.token}\n", name="conf/gw.env"
    )
    routes = env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    secrets: gw.env
    gateways:
      named: {{url: "{gateway.url}", token: "${{{GW_ENV}}}"}}
      plain: {{url: "{gateway.url}"}}
    targets:
      a: {{host: here, chain: [{{sessions_send: {{gateway: named, retries: 0}}}}]}}
      b: {{host: here, chain: [{{sessions_send: {{gateway: plain, retries: 0}}}}]}}
    """),
        name="conf/routes.yaml",
    )  # the file's path is relative to routes.yaml's folder
    results = [
        env.run("send", target, f"token from the file for {target}", "--json", "--config", str(routes))
        for target in ("a", "b")
    ]
    for r in results:
        assert r.code == 0, r.out + r.err
        assert r.json()["via"] == "sessions_send"
    assert gateway.token not in everything(env, *results)
    call = env.run("call", "plain", "health", "--config", str(routes))
    assert call.code == 0, call.err
    assert gateway.token not in call.out + call.err


# -- the file is refused unless it is safe ------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused(env: Env, bot: FakeTelegram, mode: int) -> None:
    path = secrets_file(env, f"{TOKEN_ENV}={TOKEN}\n", mode=mode)
    bot_routes(env, bot)
    expected = f"{secrets_line(env)}: {path}: mode 0{mode:o} gives other users access (chmod 600 {path})"
    for args in (("send", "human", "hi"), ("routes", "check")):
        r = env.run(*args)
        assert r.code == 2, (args, r.err)
        assert re.search(rf"(^|\s){re.escape(expected)}$", one_error_line(r)), r.err
        assert TOKEN not in r.out + r.err
    doctor = env.run("doctor")
    assert doctor.code == 1 and doctor.out.splitlines()[0] == f"FAIL  {'config':<28} {expected} (config)"
    assert TOKEN not in doctor.out + doctor.err
    assert bot.requests() == []


def test_a_file_that_is_not_a_regular_file_is_refused(env: Env, bot: FakeTelegram) -> None:
    (env.tmp / "secrets.env").mkdir(mode=0o700)
    bot_routes(env, bot)
    r = env.run("send", "human", "hi")
    assert r.code == 2
    assert one_error_line(r).endswith(f"secrets: {env.tmp / 'secrets.env'}: not a regular file")


def test_a_file_owned_by_someone_else_is_refused(
    env: Env, bot: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secrets_file(env, f"{TOKEN_ENV}={TOKEN}\n")
    routes = bot_routes(env, bot)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
        r = env.run("send", "human", "hi")
        assert r.code == 2
        line = one_error_line(r)
    else:  # no chown without root: the same check, as this process sees a file of another user
        from clawrelay.config.loader import parse_routes

        real = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real + 1)
        _, errors = parse_routes(routes.read_text(), str(routes), routes)
        (line,) = errors
    assert re.search(
        rf"(^|\s){re.escape(secrets_line(env))}: {re.escape(str(path))}: owned by uid \d+, not by you "
        rf"\(uid \d+\)$",
        line,
    ), line
    assert TOKEN not in line


def test_a_file_over_64_kib_is_refused(env: Env, bot: FakeTelegram) -> None:
    secrets_file(env, "# padding\n" * 7000)
    bot_routes(env, bot)
    r = env.run("routes", "check")
    assert r.code == 2 and one_error_line(r).endswith("larger than 64 KiB")


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("A=1\njust-a-bare-secret-value-7f3a\n", 2, "expected NAME=value"),
        ("# ok\n\nexport\tB=2\nBAD-NAME=the-secret-value-7f3a\n", 4, "not a variable name before `=`"),
        ("C='the-secret-value-7f3a\n", 1, "no closing ' quote"),
        ('D="the-secret-value-7f3a\n', 1, 'no closing " quote'),
        ("E='the-secret-value-7f3a' trailing-7f3a\n", 1, "text after the closing quote"),
        ("F=one\nF=the-secret-value-7f3a\n", 2, "F is set again (first on line 1)"),
        ("G=caf\xe9-the-secret-value-7f3a\n", 1, "not UTF-8 text"),
    ],
)
def test_a_malformed_line_is_named_by_its_number_and_no_value_is_echoed(
    env: Env, bot: FakeTelegram, text: str, line: int, what: str
) -> None:
    path = env.tmp / "secrets.env"
    path.write_bytes(text.encode("latin-1"))
    path.chmod(0o600)
    bot_routes(env, bot)
    r = env.run("send", "human", "hi", "--json")
    assert r.code == 2
    assert one_error_line(r) == f"clawrelay: {secrets_line(env)}: {path}:{line}: {what}"
    assert "7f3a" not in r.out + r.err


def test_the_format_is_read_literally_and_nothing_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "s.env"
    path.write_text(
        textwrap.dedent(f"""\
        # a comment

        PLAIN=abc123 # a comment after a value
        export EXPORTED=def456
          SPACED = ghi789
        SINGLE='$HOME and $(touch {marker})' # a comment
        DOUBLE="a \\"quoted\\" \\\\ ${{PLAIN}} `touch {marker}` #not a comment"
        EMPTY=
        HASH=a#b
        CRLF=crlf-value\r
        """)
    )
    path.chmod(0o600)
    found = SecretsFile.read(path)
    names = ("PLAIN", "EXPORTED", "SPACED", "SINGLE", "DOUBLE", "HASH", "CRLF")
    assert {name: found.get(name) for name in names} == {
        "PLAIN": secrets.Found("abc123", f"{path}:3"),
        "EXPORTED": secrets.Found("def456", f"{path}:4"),
        "SPACED": secrets.Found("ghi789", f"{path}:5"),
        "SINGLE": secrets.Found(f"$HOME and $(touch {marker})", f"{path}:6"),
        "DOUBLE": secrets.Found(f'a "quoted" \\ ${{PLAIN}} `touch {marker}` #not a comment', f"{path}:7"),
        "HASH": secrets.Found("a#b", f"{path}:9"),
        "CRLF": secrets.Found("crlf-value", f"{path}:10"),
    }
    assert found.get("EMPTY") is None and found.get("NOWHERE") is None
    assert not marker.exists()


# -- where each secret came from ----------------------------------------------------------------------


def three_sources(env: Env) -> tuple[Path, dict[str, str]]:
    """A gateway token in the file, the bot's token in the environment, a proxy password nowhere."""
    path = secrets_file(
        env,
        f"""
    # gateway
    {GW_ENV}=gw-secret-from-the-file-91c2
    """,
    )
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    secrets: {path}
    gateways:
      gw: {{url: "ws://127.0.0.1:9", token: "${{{GW_ENV}}}"}}
    telegram: {{token: "${{{TOKEN_ENV}}}", proxy: "http://u:${{PROXY_PW}}@127.0.0.1:9"}}
    targets:
      t: {{chain: [{{command: {{argv: ["true"]}}}}]}}
    """)
    )
    return path, {TOKEN_ENV: TOKEN}


def test_doctor_says_where_each_secret_came_from_never_its_value(env: Env) -> None:
    path, extra = three_sources(env)
    r = env.run("doctor", "--json", **extra)
    assert r.code == 1, r.err  # one secret is set nowhere
    doc = r.json()
    lines = {c["detail"]: c for c in doc["checks"] if c["subject"] == "secrets"}
    assert lines[f"{path}: 1 value, mode 0600, owned by you"]["ok"] is True
    assert lines[f"${{{GW_ENV}}}: from {path}:2 (gateways.gw.token)"]["ok"] is True
    assert lines[f"${{{TOKEN_ENV}}}: from the environment (telegram.token)"]["ok"] is True
    unset = lines["${PROXY_PW}: NOT SET (telegram.proxy)"]
    assert (unset["ok"], unset["reason"], unset["fix"]) == (False, "config", f"add PROXY_PW=… to {path}")
    human = env.run("doctor", **extra)
    assert f"from {path}:2 (gateways.gw.token)" in human.out and "fix: add PROXY_PW=… to" in human.out
    for text in (r.out, r.err, human.out, human.err):
        assert "gw-secret-from-the-file-91c2" not in text and TOKEN not in text


def test_doctor_reports_a_missing_file_with_its_fix(env: Env) -> None:
    path, extra = three_sources(env)
    path.unlink()
    r = env.run("doctor", "--json", **extra)
    assert r.code == 1
    checks = [c for c in r.json()["checks"] if c["subject"] == "secrets"]
    assert (checks[0]["detail"], checks[0]["ok"], checks[0]["fix"]) == (
        f"{path}: no such file",
        False,
        f"write NAME=value lines to it, then chmod 600 {path}",
    )
    assert any(c["detail"] == f"${{{GW_ENV}}}: NOT SET (gateways.gw.token)" for c in checks)


def test_doctor_without_a_file_points_to_one_for_an_unset_secret(env: Env) -> None:
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    gateways:
      gw: {{url: "ws://127.0.0.1:9", token: "${{{GW_ENV}}}"}}
    targets:
      t: {{chain: [{{command: {{argv: ["true"]}}}}]}}
    """)
    )
    r = env.run("doctor", "--json")
    (check,) = [c for c in r.json()["checks"] if c["subject"] == "secrets"]
    assert check["ok"] is False and check["detail"] == f"${{{GW_ENV}}}: NOT SET (gateways.gw.token)"
    assert "secrets: ./secrets.env" in check["fix"] and f"export {GW_ENV}=" in check["fix"]
    ok = env.run("doctor", "--json", **{GW_ENV: "from-the-env-5c5c"})
    assert [c for c in ok.json()["checks"] if c["subject"] == "secrets"] == []  # only one place to look


def test_routes_show_says_where_each_secret_came_from(env: Env) -> None:
    path, extra = three_sources(env)
    r = env.run("routes", "show", "--json", **extra)
    assert r.code == 0, r.err
    data: dict[str, Any] = r.json()["routes"]  # type: ignore[index, assignment]
    assert data["gateways"]["gw"]["token"] == f"${{{GW_ENV}}} (set from {path}:2)"
    assert data["telegram"]["token"] == f"${{{TOKEN_ENV}}} (set from the environment)"
    human = env.run("routes", "show", **extra)
    assert f"(set from {path}:2)" in " ".join(human.out.split())  # however YAML folds the line
    check = env.run("routes", "check", **extra)
    assert check.code == 0
    for text in (r.out, human.out, check.out, check.err, json.dumps(data)):
        assert "gw-secret-from-the-file-91c2" not in text and TOKEN not in text


def test_a_command_step_gets_the_file_secrets_it_lists_and_no_others(env: Env) -> None:
    from conftest import program

    got = env.tmp / "got.jsonl"
    secrets_file(env, "CLAWRELAY_T_LISTED=listed-value-123\nCLAWRELAY_T_OTHER=other-value-456\n")
    env.routes(
        header(env.workspace)
        + textwrap.dedent(f"""
    secrets: ./secrets.env
    gateways:
      a: {{url: "ws://127.0.0.1:1", token: "${{CLAWRELAY_T_LISTED}}"}}
      b: {{url: "ws://127.0.0.1:1", token: "${{CLAWRELAY_T_OTHER}}"}}
    targets:
      ops: {{chain: [{{command: {{argv: {json.dumps(program("record.py", got))}, env: [CLAWRELAY_T_LISTED]}}}}]}}
    """)
    )
    r = env.run("send", "ops", "hello")
    assert r.code == 0, r.err
    (seen,) = [json.loads(line) for line in got.read_text().splitlines()]
    assert seen["CLAWRELAY_T_LISTED"] == "listed-value-123" and "CLAWRELAY_T_OTHER" not in seen
