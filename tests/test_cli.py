"""The CLI around the core: routes check/show, where the config is found, the demo, --help, -m."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Env, header
from peer import free_port


def test_the_embedded_demo_falls_back_to_its_memory_file_on_a_bare_machine(env: Env) -> None:
    nobody = f"ws://127.0.0.1:{free_port()}"  # the demo's gateway, with nothing listening
    r = env.run("send", "demo", "hello from the README", "--json", CLAWRELAY_DEMO_GATEWAY=nobody)
    assert r.code == 0, r.err
    doc = r.json()
    assert [(a["transport"], a["outcome"], a["reason"]) for a in doc["attempts"]] == [
        ("sessions_send", "failed", "connection_refused"),
        ("sessions_send", "failed", "connection_refused"),
        ("memory_file", "delivered", None),
    ]
    notes = list((env.home / "demo" / "workspace" / "memory").glob("*.md"))
    assert len(notes) == 1 and "hello from the README" in notes[0].read_text()
    show = env.run("routes", "show")
    assert "# source: <embedded default>" in show.out and "demo:" in show.out


def test_config_is_found_by_flag_then_env_then_cwd_then_user_dir(env: Env) -> None:
    def routes_with(target: str) -> str:
        return header(env.workspace) + f"targets: {{{target}: {{host: here, chain: [memory_file: {{}}]}}}}\n"

    user = env.tmp / "xdg-config" / "clawrelay" / "routes.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(routes_with("from_user_dir"))
    assert env.run("send", "from_user_dir", "x").code == 0

    env.routes(routes_with("from_cwd"))
    assert env.run("send", "from_cwd", "x").code == 0
    assert env.run("send", "from_user_dir", "x").code == 3

    by_env = env.routes(routes_with("from_env"), "env.yaml")
    assert env.run("send", "from_env", "x", CLAWRELAY_CONFIG=str(by_env)).code == 0

    by_flag = env.routes(routes_with("from_flag"), "flag.yaml")
    assert env.run("send", "from_flag", "x", "--config", str(by_flag), CLAWRELAY_CONFIG=str(by_env)).code == 0

    missing = env.run("send", "from_env", "x", CLAWRELAY_CONFIG=str(env.tmp / "gone.yaml"))
    assert missing.code == 2 and "gone.yaml: no such config file" in missing.err


def test_routes_show_masks_secrets_and_check_warns_about_them(env: Env) -> None:
    env.routes(
        header(env.workspace)
        + """
gateways:
  gw: {url: "ws://127.0.0.1:9", token: "${GW_TOKEN}"}
  literal: {url: "ws://127.0.0.1:9", token: "plain-text-token"}
targets:
  xiaom: {chain: [sessions_send: {gateway: gw}]}
"""
    )
    secret = "tok-8c1f0e-very-secret"
    show = env.run("routes", "show", "--json", GW_TOKEN=secret)
    assert show.code == 0, show.err
    data = show.json()["routes"]
    assert data["gateways"]["gw"]["token"] == "${GW_TOKEN} (set)"
    assert "plain-text-token" not in show.out and secret not in show.out
    human = env.run("routes", "show", GW_TOKEN=secret)
    assert secret not in human.out and "plain-text-token" not in human.out

    check = env.run("routes", "check")
    assert check.code == 0 and "ok:" in check.out
    assert "gateways.gw.token: environment variable GW_TOKEN is not set here" in check.err
    assert "gateways.literal.token is a literal in the file" in check.err


def test_a_literal_proxy_password_is_masked_everywhere_the_url_is_shown(env: Env) -> None:
    password = "LiteralPw99x"
    env.routes(
        header(env.workspace)
        + f"""
telegram: {{token: "${{BOT}}", proxy: "http://relay:{password}@127.0.0.1:3128"}}
targets:
  xiaom: {{chain: [telegram: {{chat_id: 42}}]}}
"""
    )
    for args in (["routes", "show", "--json"], ["routes", "show"], ["routes", "check", "--json"]):
        r = env.run(*args)
        assert r.code == 0, r.err
        assert password not in r.out + r.err
    assert "relay:***@127.0.0.1:3128" in env.run("routes", "show").out  # the rest of the URL stays readable
    check = env.run("routes", "check")
    assert "telegram.proxy holds a literal password" in check.err and password not in check.out + check.err

    env.routes(
        header(env.workspace)
        + f"""
telegram: {{token: "${{BOT}}", proxy: "relay:{password}@127.0.0.1:3128"}}
targets:
  xiaom: {{chain: [telegram: {{chat_id: 42}}]}}
"""
    )
    bad = env.run("routes", "check", "--json")
    assert bad.code == 2 and "not a proxy URL" in bad.out and password not in bad.out + bad.err


def test_routes_check_lists_every_error(env: Env) -> None:
    env.routes(
        header(env.workspace)
        + """
targets:
  a: {host: nowhere, chain: [memory_file: {}]}
  b: {chain: [teleport: {}]}
"""
    )
    r = env.run("routes", "check", "--json")
    assert r.code == 2
    doc = r.json()
    assert (
        doc["ok"] is False and len(doc["errors"]) == 1 and "unknown transport 'teleport'" in doc["errors"][0]
    )


def test_help_and_python_dash_m(env: Env) -> None:
    r = env.run("--help")
    assert r.code == 0 and "send" in r.out and "outbox" in r.out
    version = subprocess.run([sys.executable, "-m", "clawrelay", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("clawrelay ")


def test_the_root_help_lists_each_commands_own_help_without_building_any() -> None:
    """`clawrelay --help` lists the commands from a table in cli/__init__.py: each line is what the
    command's own help gives, at any width, and typer (or anything a command needs) stays unloaded.
    A process of its own: building the commands loads typer the way the CLI does."""
    code = """
import contextlib, io, sys
import click
from clawrelay.cli import COMMANDS, build_command, main
sys.argv = ["clawrelay", "--help"]
with contextlib.redirect_stdout(io.StringIO()):
    main()
print([m for m in ("typer", "msgspec", "yaml", "asyncio", "sqlite3") if m in sys.modules])
for name, (_, _, sentence) in COMMANDS.items():
    listed, real = click.Command(name, help=sentence), build_command(name)
    for limit in (20, 45, 65, 200):
        if listed.get_short_help_str(limit) != real.get_short_help_str(limit):
            print(f"{name} at {limit}: {listed.get_short_help_str(limit)!r} != {real.get_short_help_str(limit)!r}")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]"]


def test_forwarding_and_finding_the_state_dir_load_no_library(tmp_path: Path) -> None:
    """The client's path to a relay (none answering here) and the state dir's lookup, which every
    command makes, load none of the libraries a command may need (click, typer, the config model,
    websockets, asyncio): `log` or `routes check` must not pay for an event loop."""
    code = """
import sys
from clawrelay.relay.client import forward
from clawrelay import paths
assert forward(["send", "demo", "x"]) is None  # no relay on this state dir
paths.state_dir()
print([m for m in ("click", "typer", "msgspec", "yaml", "websockets", "asyncio", "concurrent.futures")
       if m in sys.modules])
"""
    env = {**os.environ, "CLAWRELAY_HOME": str(tmp_path / "state")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]"]


def test_json_errors_are_parseable(env: Env) -> None:
    env.routes(header(env.workspace) + "targets: {a: {host: here, chain: [memory_file: {}]}}\n")
    r = env.run("send", "nobody", "x", "--json")
    assert r.code == 3
    assert r.json() == {
        "error": {
            "reason": "unknown_target",
            "message": "unknown target 'nobody' (known: a; groups start with @)",
        }
    }


def test_an_unusable_state_dir_is_one_clear_error(env: Env) -> None:
    env.routes(header(env.workspace) + "targets: {a: {host: here, chain: [memory_file: {}]}}\n")
    blocker = env.tmp / "not-a-dir"
    blocker.write_text("")
    r = env.run("send", "a", "x", CLAWRELAY_HOME=str(blocker / "state"))
    assert r.code == 2 and "Traceback" not in r.err
    assert "not-a-dir" in r.err and "CLAWRELAY_HOME" in r.err and len(r.err.strip().splitlines()) == 1


def test_the_readme_demo_works_in_a_checkout_whose_example_routes_would_be_found_first(env: Env) -> None:
    example = Path(__file__).resolve().parents[1] / "routes.yaml"
    (env.tmp / "routes.yaml").write_text(example.read_text())
    nobody = f"ws://127.0.0.1:{free_port()}"
    assert env.run("send", "demo", "hi", CLAWRELAY_DEMO_GATEWAY=nobody).code == 3  # the example has no demo
    r = env.run("send", "demo", "hello from clawrelay", "--config", "builtin", CLAWRELAY_DEMO_GATEWAY=nobody)
    assert r.code == 0, r.err
    assert "delivered to demo via memory_file" in r.out
    assert env.run("routes", "show", CLAWRELAY_CONFIG="builtin").out.startswith(
        "# source: <embedded default>"
    )


def test_config_option_before_or_after_the_command_and_the_commands_own_wins(env: Env) -> None:
    def routes_with(target: str, name: str) -> Path:
        return env.routes(
            header(env.workspace) + f"targets: {{{target}: {{host: here, chain: [memory_file: {{}}]}}}}\n",
            name,
        )

    a, b = routes_with("from_a", "a.yaml"), routes_with("from_b", "b.yaml")
    assert env.run("-c", str(a), "send", "from_a", "x").code == 0  # before the command
    assert env.run("send", "from_a", "x", "-c", str(a)).code == 0  # after it
    assert env.run("--config", str(a), "routes", "show").out.startswith(f"# source: {a}")
    assert env.run("--config", "builtin", "routes", "show").out.startswith("# source: <embedded default>")
    both = env.run("-c", str(a), "send", "from_b", "x", "-c", str(b))
    assert both.code == 0, both.err  # the command's own -c wins
    assert env.run("-c", str(a), "send", "from_a", "x", "--config", str(b)).code == 3
    assert (
        env.run("-c", str(a), "send", "from_a", "x", CLAWRELAY_CONFIG=str(b)).code == 0
    )  # over the variable
    missing = env.run("-c", str(env.tmp / "gone.yaml"), "doctor")
    assert missing.code == 2 and "gone.yaml: no such config file" in missing.err, missing.err
    assert len(missing.err.strip().splitlines()) == 1 and "Traceback" not in missing.err
    assert "--config" in env.run("--help").out


def test_a_forked_run_and_the_console_script_agree(env: Env) -> None:
    """tests/forkrun.py stands in for the console script in most tests: the same exit status,
    output, stdin and journal, or every test that relies on it proves less than it says."""
    import re

    env.routes(header(env.workspace) + "targets: {x: {host: here, chain: [memory_file: {}]}}\n")
    cases = [
        ("send", "x", "-", "--json"),  # the body from stdin
        ("send", "nobody", "hi"),  # exit 3, one line on stderr
        ("send", "x"),  # a usage error: exit 2
        ("outbox", "list", "--json"),
        ("log", "--json"),
    ]
    for args in cases:
        runs = [env.run(*args, input="from stdin ünïcode\n", fork=fork) for fork in (True, False)]
        forked, real = (
            (r.code, re.sub(r"[0-9a-f-]{36}|\d{10,}|elapsed_ms\": \d+", "N", r.out), r.err) for r in runs
        )
        assert forked == real, args
    assert env.note().count("from stdin ünïcode") == 2  # each run wrote, and closed, its note
