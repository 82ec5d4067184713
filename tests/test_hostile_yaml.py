"""Hostile routes.yaml (issue 13, part 3): every one is refused with exit 2 and one line `FILE:LINE: what`.

Alias bombs, recursive aliases, deep nesting, complex keys, odd bytes and odd scalars: each must end
at once, in bounded memory, with the file and the line that is wrong, never a traceback or a hang.
The CLI runs as a subprocess under a timeout, so a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLAWRELAY, Env

from clawrelay.config.loader import parse_routes

TIMEOUT = 10  # seconds: generous; each case takes well under one


def bomb() -> str:
    """Billion laughs: nine levels of ten aliases, 10**9 strings once expanded."""
    lines = ["version: 1", "a0: &a0 [" + ", ".join(['"lol"'] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


# (id, file content, the line the message must name, a fragment of the message)
CASES: list[tuple[str, str | bytes, int, str]] = [
    ("alias bomb", bomb(), 6, "alias *a3 expands the document to more than"),
    ("recursive alias in a list", "version: 1\na: &a [*a]\n", 2, "recursive alias *a"),
    (
        "recursive alias in a mapping",
        "version: 1\nself: x\nb: &b\n  c:\n    d: *b\n",
        5,
        "recursive alias *b",
    ),
    ("5000-deep flow sequence", "version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", 2, "nested more than"),
    (
        "5000-deep flow mapping",
        "version: 1\nx: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        2,
        "nested more than",
    ),
    (
        "700-deep block mapping",
        "version: 1\n" + "".join(" " * i + "k:\n" for i in range(700)) + " " * 700 + "v\n",
        66,
        "nested more than",
    ),
    ("5000-deep block sequence", "version: 1\nx:\n" + "- " * 5000 + "x\n", 3, "nested more than"),
    (
        "an alias that nests too deep",
        "version: 1\na: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
        3,
        "alias *a nests the document more than",
    ),
    (
        "complex key (block)",
        "version: 1\n? [a, b]\n: 1\n",
        2,
        "a mapping key must be a plain value, not a sequence",
    ),
    (
        "complex key (flow)",
        "version: 1\nx: {{a: b}: 1}\n",
        2,
        "a mapping key must be a plain value, not a mapping",
    ),
    ("complex key (alias)", "version: 1\nl: &l [a]\nm: {*l : 1}\n", 3, "a mapping key must be a plain value"),
    (
        "merge key",
        "version: 1\nbase: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
        4,
        "`<<` merge keys are not supported",
    ),
    (
        "python object tag on a mapping",
        "version: 1\nx: !!python/object:os.system {}\n",
        2,
        "tag !!python/object:os.system is not supported",
    ),
    (
        "python name tag on a scalar",
        "version: 1\nx: !!python/name:os.system ''\n",
        2,
        "python/name:os.system",
    ),
    ("set tag", "version: 1\nx: !!set {a, b}\n", 2, "tag !!set is not supported"),
    ("duplicate anchor", "version: 1\na: &x 1\nb: &x 2\n", 3, "anchor &x is already defined on line 2"),
    ("two documents", "version: 1\n---\nversion: 1\n", 2, "second YAML document"),
    ("empty file", "", 1, "expected a mapping"),
    ("not UTF-8", b"version: 1\nself: caf\xe9\n", 2, "not UTF-8"),
    ("NUL byte", b"version: 1\nself: a\x00b\n", 2, "#x0000"),
    ("huge scalar", "version: 1\nself: " + "x" * (2 << 20) + "\n", 2, "KiB limit"),
    ("too many values without aliases", "version: 1\nx: [" + "1, " * 60000 + "]\n", 2, "more than"),
    ("impossible date", "version: 1\nself: 2020-13-45\n", 2, "not a valid timestamp"),
    ("5000-digit integer", "version: 1\nself: " + "1" * 5000 + "\n", 2, "number too long"),
    ("sexagesimal integer", "version: 1\nself: 1" + ":59" * 80000 + "\n", 2, "number too long"),
    ("empty !!int", "version: 1\nself: !!int ''\n", 2, "not a valid int"),
]


def _write(env: Env, content: str | bytes) -> Path:
    path = env.tmp / "routes.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_routes_file_is_one_line_with_its_file_and_line(
    env: Env, content: str | bytes, line: int, fragment: str
) -> None:
    path = _write(env, content)
    commands = {
        "routes check": ("routes", "check", "--config", str(path)),
        "send": ("send", "x", "y", "--config", str(path)),
    }
    procs = {
        name: subprocess.Popen(
            env.cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=env.tmp,
            env=env.vars,
        )
        for name, args in commands.items()
    }
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=TIMEOUT)
            assert "Traceback" not in out + err, (name, err[-2000:])
            assert proc.returncode == 2, (name, proc.returncode, err[-2000:])
            lines = err.splitlines()
            assert len(lines) == 1, (name, err[-2000:])
            assert re.search(rf"(^|: ){re.escape(str(path))}:{line}: ", lines[0]), (name, lines[0][:500])
            assert fragment in lines[0], (name, lines[0][:500])
            assert len(lines[0]) < 300, (name, lines[0][:500])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


PEAK = """
import json, resource, subprocess, sys
try:
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=20)
    rc, err = p.returncode, p.stderr
except subprocess.TimeoutExpired:
    rc, err = "timeout", ""
print(json.dumps({"rc": rc, "err": err[-500:], "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""  # the peak RSS of this wrapper's only child: the CLI


def test_alias_bomb_is_refused_without_expanding_it(env: Env) -> None:
    """Peak memory of the CLI refusing the bomb stays small (it grew to ~600 MB, still going, before)."""
    path = _write(env, bomb())
    assert CLAWRELAY
    p = subprocess.run(
        [sys.executable, "-c", PEAK, CLAWRELAY, "routes", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env.vars,
        cwd=env.tmp,
        timeout=60,
    )
    report = json.loads(p.stdout)
    assert report["rc"] == 2, report
    assert report["maxrss_kb"] < 200 * 1024, report


def test_limits_leave_a_large_ordinary_file_alone() -> None:
    """1000 targets sharing one chain through an alias, far beyond any real routes file, still load."""
    targets = "".join(f"  t{i}: {{aliases: [a{i}], chain: *chain}}\n" for i in range(1, 1000))
    text = "version: 1\nself: me\ntargets:\n  t0: {chain: &chain [command: {argv: [notify]}]}\n" + targets
    routes, errors = parse_routes(text, "r.yaml")
    assert errors == [] and routes is not None and len(routes.config.targets) == 1000


def test_line_of_and_duplicate_keys_still_work_through_aliases() -> None:
    text = "version: 1\nself: me\nc: &c [command: {argv: [notify]}]\n"
    routes, errors = parse_routes(text + "targets:\n  t: {chain: *c}\n  t: {chain: *c}\n", "r.yaml")
    assert (
        routes is None
        and "r.yaml:3: c: unknown key" in errors
        and "r.yaml:6: targets.t: duplicate key" in errors
    )


TOKENS = [
    *"[]{}:,-&*!?|>'\"#% \n\t<@`~\\.aab01=",
    "a:",
    "&a ",
    "*a",
    "- ",
    "? ",
    "!!",
    "<<: ",
    "!!int ",
    "!!set ",
    "2020-13-45",
    "1:2",
    "---",
    "...",
    "\u00e9",
    "\x00",
]


def test_any_text_gives_routes_or_one_line_errors_with_a_line() -> None:
    """Fuzz: whatever follows `version: 1`, parse_routes returns, and every error is `r.yaml:N: …`."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=400, deadline=None, database=None)
    @hypothesis.given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
    def check(text: str) -> None:
        routes, errors = parse_routes("version: 1\n" + text, "r.yaml")
        assert (routes is None) == bool(errors)
        for e in errors:
            assert re.match(r"r\.yaml:\d+: \S", e) and "\n" not in e, e

    check()
