"""The CLI under hostile input and broken state: one line, the documented exit code, never a traceback.

Each case sets up what a hostile user or a broken machine would hand clawrelay (bytes that are
not UTF-8, a NUL, a 100 KB name, a full disk, a damaged or emptied journal, a state dir that is a
file…) and runs the installed CLI once. What is asserted is what the user sees: the exit code the
docs give, no Python traceback, and exactly one `clawrelay: …` line on stderr (with a warning
line first where the docs say one is printed).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import CLAWRELAY, Env, header, new_env


@dataclass
class Case:
    argv: list[str | bytes]
    code: int
    says: str  # a piece of the error line
    stdin: bytes = b""
    setup: Callable[[Env], None] = lambda env: None
    extra: dict[str, str] = field(default_factory=dict)
    warns: str | None = None  # a warning line expected before the outcome
    wrap: Callable[[Env, list[str | bytes]], list[str | bytes]] | None = None


def routes(env: Env) -> None:
    env.routes(
        header(env.workspace) + "targets:\n  xiaom: {host: here, chain: [memory_file: {wake: false}]}\n"
        "groups:\n  all: [xiaom]\n"
    )


HISTORY: list[Env] = []  # the `history` fixture's Env, for the setups below


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A journal with history, made once for the module: 30 messages of 500 bytes, each with its
    record and attempt, sent by the CLI as one group send (one process, not thirty). Each test that
    damages or empties a journal starts from a copy of its state dir and workspace."""
    made = new_env(tmp_path_factory.mktemp("history"))
    names = [f"h{i}" for i in range(30)]
    made.routes(
        header(made.workspace)
        + "targets:\n"
        + "".join(f"  {n}: {{host: here, chain: [memory_file: {{wake: false}}]}}\n" for n in names)
        + f"groups:\n  history: [{', '.join(names)}]\n"
    )
    sent = made.run("send", "@history", "history " + "x" * 500, "--json")
    assert sent.code == 0 and len(sent.json()) == 30, sent.err  # type: ignore[arg-type]
    HISTORY.append(made)
    yield made
    HISTORY.remove(made)


def journal_with_history(env: Env) -> None:
    (made,) = HISTORY  # the test asks for the `history` fixture
    routes(env)
    shutil.copytree(made.home, env.home)
    shutil.copytree(made.workspace, env.workspace, dirs_exist_ok=True)


def damaged_journal(env: Env) -> None:
    journal_with_history(env)
    db = env.home / "journal.db"
    data = bytearray(db.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = b"\xa5" * 4096  # a page of garbage, as a failing disk leaves it
    db.write_bytes(bytes(data))


def not_a_database(env: Env) -> None:
    routes(env)
    env.home.mkdir(parents=True)
    (env.home / "journal.db").write_text("these are not the bytes you are looking for\n" * 100)


def emptied_journal(env: Env) -> None:
    journal_with_history(env)
    (env.home / "journal.db").write_bytes(b"")


def state_dir_is_a_file(env: Env) -> None:
    routes(env)
    env.home.write_text("not a folder")


def on_a_full_disk(env: Env, argv: list[str | bytes]) -> list[str | bytes]:
    """Run inside a private mount namespace whose state dir is a tiny tmpfs, filled up after the
    journal exists: the send cannot journal anything. The outcome goes to files beside it."""
    script = (
        'set -e; mount -t tmpfs -o size=2m tmpfs "$CLAWRELAY_HOME"; '
        '"$0" send xiaom first > /dev/null; '
        'dd if=/dev/zero of="$CLAWRELAY_HOME/filler" bs=4k 2>/dev/null || true; '
        'exec "$0" "$@"'
    )
    return ["unshare", "-r", "-m", "sh", "-c", script, CLAWRELAY or "clawrelay", *argv]


def full_disk_setup(env: Env) -> None:
    routes(env)
    env.home.mkdir(parents=True)


CASES = {
    "stdin not UTF-8": Case(
        ["send", "xiaom"], 2, "stdin is not valid UTF-8", stdin=b"caf\xe9 \xff\xfe", setup=routes
    ),
    "argument not UTF-8": Case(["send", "xiaom", b"caf\xe9"], 2, "not valid UTF-8", setup=routes),
    "NUL on stdin": Case(["send", "xiaom"], 2, "NUL", stdin=b"a\x00b", setup=routes),
    "event with an unknown mode": Case(
        ["event", "xiaom", "hi", "--mode", "later"], 2, "--mode", setup=routes
    ),
    "100 KB target name": Case(["send", "x" * 100_000, "hi"], 3, "unknown target", setup=routes),
    "100 KB group name": Case(["send", "@" + "g" * 100_000, "hi"], 3, "unknown group", setup=routes),
    "target name with a newline": Case(
        ["send", "evil\nclawrelay: delivered", "hi"], 3, "unknown target", setup=routes
    ),
    "damaged journal, send": Case(["send", "xiaom", "hi"], 2, "is damaged", setup=damaged_journal),
    "damaged journal, log": Case(["log", "--last", "50"], 2, "is damaged", setup=damaged_journal),
    "not a database": Case(["outbox", "list"], 2, "is damaged", setup=not_a_database),
    "emptied journal": Case(
        ["send", "xiaom", "after the loss"], 0, "", setup=emptied_journal, warns="history is gone"
    ),
    "state dir is a file": Case(["send", "xiaom", "hi"], 2, "", setup=state_dir_is_a_file),
    "state dir is a file, demo routes": Case(
        ["send", "demo", "hi", "--config", "builtin"], 2, "", setup=state_dir_is_a_file
    ),
    "config is a folder": Case(["send", "xiaom", "hi", "--config", "/"], 2, "", setup=routes),
    "bad duration": Case(["send", "xiaom", "hi", "--deadline", "5 parsecs"], 2, "--deadline", setup=routes),
    "option out of range": Case(["log", "--last", "0"], 2, "--last", setup=routes),
    "unknown option": Case(["send", "--frobnicate"], 2, "No such option", setup=routes),
    "unknown message id": Case(["outbox", "retry", "deadbeef"], 1, "no message", setup=routes),
    "full disk under the state dir": Case(
        ["send", "xiaom", "hi"], 2, "disk is full", setup=full_disk_setup, wrap=on_a_full_disk
    ),
}


def can_unshare() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_and_broken_state_get_one_line_and_the_documented_exit_code(
    env: Env, name: str, history: Env
) -> None:
    case = CASES[name]
    if case.wrap is not None and not can_unshare():
        pytest.skip("this machine allows no private mount namespace (unshare -r -m)")
    case.setup(env)
    argv: list[str | bytes] = [*env.cmd(), *case.argv] if case.wrap is None else case.wrap(env, case.argv)
    p = subprocess.run(argv, input=case.stdin, capture_output=True, cwd=env.tmp, env=env.vars, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err and "Traceback" not in p.stdout.decode("utf-8", "replace"), err
    assert p.returncode == case.code, (p.returncode, err)
    lines = err.splitlines()
    if case.warns is not None:
        assert len(lines) == 1 and case.warns in lines[0] and lines[0].startswith("clawrelay: warning: "), err
        return
    assert len(lines) == 1 and lines[0].startswith("clawrelay: "), err
    assert case.says in lines[0], err
    assert len(lines[0]) < 600, "a hostile argument is not echoed whole"


def test_a_damaged_journal_is_reported_before_anything_is_sent(env: Env, history: Env) -> None:
    damaged_journal(env)
    before = env.note()
    assert env.run("send", "xiaom", "must not go").code == 2
    assert env.note() == before


def test_an_emptied_journal_is_said_once_and_a_new_one_works(env: Env, history: Env) -> None:
    emptied_journal(env)
    first = env.run("log", "--json")
    assert first.code == 0 and "history is gone" in first.err and first.json() == []
    again = env.run("log", "--json")
    assert again.code == 0 and again.err == ""
    with sqlite3.connect(env.home / "journal.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert os.stat(env.home / "journal.db").st_mode & 0o777 == 0o600


def test_a_claim_that_cannot_be_taken_is_a_state_error_not_a_crash(tmp_path: Path) -> None:
    from clawrelay.claims import Claim
    from clawrelay.errors import StateError

    with pytest.raises(StateError) as e:
        Claim(tmp_path / "gone", "01a22b53-733f-7764-a49d-0e01adbcefe0").acquire()
    assert e.value.exit_code == 2 and "CLAWRELAY_HOME" in str(e.value)
