"""`clawrelay service install|status|uninstall`, and what `send` and `doctor` say about retries.

"Retried automatically" is only true where a flusher runs: these tests hold `send` and `doctor` to
that, start a real watcher, install the cron job on the real gateway (whose scheduler runs it),
and drive the systemd and launchd paths with a fake `systemctl` / `launchctl` on PATH that
records its argv (this container has no systemd user session): unit-level for those two.
"""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import CLAWRELAY, Env, header, program, wait_for
from peer import Gateway

ROOT = Path(__file__).resolve().parents[1]
TOKEN_ENV = "TEST_GW_TOKEN"
NO_FLUSHER = "nothing retries it on this machine: no flusher runs (clawrelay service install sets one up)"


def down_routes(env: Env, extra: str = "") -> Path:
    """Target `s`: a program that delivers only while the flag file exists; `t`: a memory note."""
    argv = program("when_file.py", env.tmp / "up", env.tmp / "out.txt")
    return env.routes(
        header(env.workspace)
        + textwrap.dedent(extra)
        + textwrap.dedent(f"""
    outbox: {{backoff: 1s, max_backoff: 1s}}
    targets:
      s: {{chain: [command: {{argv: {json.dumps(argv)}, retries: 0}}]}}
      t: {{host: here, chain: [memory_file: {{wake: false}}]}}
    """)
    )


def delivered(env: Env) -> list[str]:
    out = env.tmp / "out.txt"
    return out.read_text().splitlines() if out.exists() else []


def flusher_check(env: Env, **extra: str) -> dict:
    r = env.run("doctor", "--json", **extra)
    assert r.out.startswith("{"), r.err
    (check,) = [c for c in r.json()["checks"] if c["subject"] == "flusher"]
    return check


def fake_program(env: Env, name: str, body: str) -> Path:
    """A stand-in for a supervisor's command line tool: appends its argv to <name>.calls."""
    bindir = env.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    path = bindir / name
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys\nfrom pathlib import Path\n"
        f"HERE = Path({str(bindir)!r})\n"
        f"with open(HERE / '{name}.calls', 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        + textwrap.dedent(body)
    )
    path.chmod(0o755)
    return path


def calls(env: Env, name: str) -> list[list[str]]:
    path = env.tmp / "bin" / f"{name}.calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def with_fakes(env: Env) -> dict[str, str]:
    return {"PATH": f"{env.tmp / 'bin'}:{env.vars['PATH']}"}


SYSTEMCTL = """
args = sys.argv[1:]
if os.environ.get("FAKE_NO_BUS"):
    print("Failed to connect to bus: No medium found", file=sys.stderr)
    sys.exit(1)
if args[1:2] == ["is-active"]:
    print((HERE / "active").read_text().strip() if (HERE / "active").exists() else "inactive")
if args[1:3] == ["enable", "--now"]:
    (HERE / "active").write_text("active")
if args[1:3] == ["disable", "--now"]:
    (HERE / "active").write_text("inactive")
"""
LOGINCTL = """
print("no")
"""
LAUNCHCTL = """
args = sys.argv[1:]
loaded = HERE / "loaded"
if args[0] == "print":
    if not loaded.exists():
        print("Could not find service", file=sys.stderr)
        sys.exit(113)
    print("gui/501/ai.clawrelay.flush = {\\n\\tstate = running\\n\\tpid = 4242\\n}")
if args[0] == "bootstrap":
    loaded.write_text(args[2])
if args[0] == "bootout":
    loaded.unlink()
"""


# -- what send and doctor say --------------------------------------------------------------------


def test_send_and_doctor_say_a_queued_message_waits_until_a_flusher_runs(env: Env) -> None:
    down_routes(env)
    r = env.run("send", "s", "first", "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["queued"] is True and doc["auto_retry"] is False
    human = env.run("send", "s", "second")
    assert human.code == 1 and NO_FLUSHER in human.out.splitlines()
    delivered_doc = env.run("send", "t", "a note", "--json").json()
    assert delivered_doc["status"] == "delivered" and "auto_retry" not in delivered_doc

    check = flusher_check(env)
    assert (check["ok"], check["reason"], check["fix"]) == (False, "no_flusher", "clawrelay service install")
    assert "2 queued in the outbox" in check["detail"]
    human_doctor = env.run("doctor")
    assert human_doctor.code == 1 and "fix: clawrelay service install" in human_doctor.out
    st = env.run("service", "status", "--json")
    assert st.code == 1
    assert (st.json()["flusher_running"], st.json()["kind"], st.json()["outbox"]) == (
        False,
        None,
        {"queued": 2, "ambiguous": 0},
    )

    # a watcher runs: the lock it holds says so, to send, doctor and status alike
    watcher = env.spawn("outbox", "flush", "--watch", "--interval", "30s")
    try:
        wait_for(
            lambda: (
                (env.run("service", "status", "--json").json()["watcher"] or {}).get("pid") == watcher.pid
            ),
            30,
        )
        r = env.run("send", "s", "third", "--json")
        assert r.json()["queued"] is True and r.json()["auto_retry"] is True
        assert NO_FLUSHER not in env.run("send", "s", "fourth").out
        check = flusher_check(env)
        assert check["ok"] is True and check["detail"].startswith(
            f"a watcher runs (pid {watcher.pid}, every 30s)"
        )
        st = env.run("service", "status")
        assert st.code == 0 and "retried automatically: a watcher runs" in st.out
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    doc = env.run("service", "status", "--json").json()
    assert doc["flusher_running"] is False and doc["watcher"] is None  # the lock went with it
    assert doc["last_pass"]["mode"] == "watch" and doc["last_pass"]["pid"] == watcher.pid
    assert env.run("send", "s", "fifth", "--json").json()["auto_retry"] is False


def test_doctor_is_ok_with_an_empty_outbox_and_no_flusher(env: Env) -> None:
    down_routes(env)
    check = flusher_check(env)
    assert check["ok"] is True and check["detail"].startswith("the outbox is empty; no flusher runs")
    # one pass run by hand is not a flusher: it records its finish, and promises nothing
    assert env.run("outbox", "flush").code == 0
    assert env.run("service", "status", "--json").json()["last_pass"]["mode"] == "once"
    assert env.run("send", "s", "x", "--json").json()["auto_retry"] is False


# -- systemd (a fake systemctl: unit level) ------------------------------------------------------


@pytest.mark.integration  # it runs what the unit says: the relay, a server
def test_systemd_install_writes_a_unit_that_runs_a_watcher_and_uninstall_removes_it(env: Env) -> None:
    routes = down_routes(env)
    fake_program(env, "systemctl", SYSTEMCTL)
    fake_program(env, "loginctl", LOGINCTL)
    fakes = with_fakes(env)
    message = env.run("send", "s", "delivered by the service", "--json").json()["id"]

    r = env.run("service", "install", **fakes)  # no --kind: `systemctl --user` answers here
    assert r.code == 0, r.err
    unit = Path(env.vars["XDG_CONFIG_HOME"]) / "systemd" / "user" / "clawrelay-flush.service"
    assert f"wrote {unit}" in r.out and "ran systemctl --user enable --now clawrelay-flush.service" in r.out
    assert "loginctl enable-linger" in r.out  # linger is off: said, with the command
    assert calls(env, "systemctl") == [
        ["--user", "show-environment"],
        ["--user", "daemon-reload"],
        ["--user", "enable", "--now", "clawrelay-flush.service"],
    ]
    text = unit.read_text()
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            fields.setdefault(key, []).append(value)
    argv = shlex.split(fields["ExecStart"][0])
    assert argv == [CLAWRELAY, "serve", "--interval", "30s", "--config", str(routes)]
    unit_env = dict(v.strip('"').split("=", 1) for v in fields["Environment"])
    assert unit_env["CLAWRELAY_HOME"] == str(env.home) and unit_env["CLAWRELAY_SERVICE"] == "systemd"

    # what systemd would start: it delivers, and while it runs status says a flusher runs
    (env.tmp / "up").touch()
    proc = subprocess.Popen(
        argv,
        env={"HOME": env.vars["HOME"], **unit_env},
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: delivered(env) == ["delivered by the service"], 60)
        doc = env.run("service", "status", "--json", **fakes).json()
        assert doc["kind"] == "systemd" and doc["active"] is True and doc["flusher_running"] is True
        assert doc["watcher"]["pid"] == proc.pid
        wait_for(
            lambda: (
                (env.run("service", "status", "--json").json()["last_service_pass"] or {}).get("service")
                == "systemd"
            ),
            30,
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"delivered to s via command (id {message})" in out
    # stopped, but its last pass is recent: within twice its interval it still counts as running
    assert env.run("service", "status", "--json", **fakes).json()["flusher_running"] is True

    # installing again changes nothing: the same unit, no restart
    again = env.run("service", "install", **fakes)
    assert again.code == 0 and f"{unit}: unchanged" in again.out
    changes = [c for c in calls(env, "systemctl") if c[1] != "is-active"]  # status only asks
    assert changes[3:] == [
        ["--user", "show-environment"],
        ["--user", "daemon-reload"],
        ["--user", "enable", "--now", "clawrelay-flush.service"],
    ]
    assert sorted(p.name for p in unit.parent.iterdir()) == ["clawrelay-flush.service"]
    other = env.run("service", "install", "--kind", "launchd", **fakes)
    assert other.code == 2 and "a systemd flusher is installed already" in other.err

    gone = env.run("service", "uninstall", **fakes)
    assert gone.code == 0, gone.err
    assert calls(env, "systemctl")[-2:] == [
        ["--user", "disable", "--now", "clawrelay-flush.service"],
        ["--user", "daemon-reload"],
    ]
    assert not unit.exists()
    doc = env.run("service", "status", "--json", **fakes).json()
    assert doc["installed"] is None and doc["flusher_running"] is False
    assert "nothing to remove" in env.run("service", "uninstall", **fakes).out


def test_without_a_systemd_user_manager_the_default_is_the_openclaw_cron_job(env: Env) -> None:
    routes = down_routes(
        env, 'gateways:\n  here-gw: {url: "ws://127.0.0.1:9"}\n  far: {url: "ws://10.9.9.9:1"}\n'
    )
    fake_program(env, "systemctl", SYSTEMCTL)
    fakes = {**with_fakes(env), "FAKE_NO_BUS": "1"}  # "Failed to connect to bus", as in this container
    r = env.run("service", "install", "--dry-run", "--json", **fakes)
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["kind"], doc["gateway"], doc["dry_run"]) == ("cron", "here-gw", True)
    ((method, params),) = [(c["method"], c["params"]) for c in doc["rpc"]]
    assert method == "cron.add" and params["schedule"] == {"kind": "every", "everyMs": 300_000}
    assert params["payload"]["argv"] == [CLAWRELAY, "outbox", "flush", "--exit-zero", "--config", str(routes)]
    assert params["payload"]["env"] == {"CLAWRELAY_HOME": str(env.home), "CLAWRELAY_SERVICE": "cron"}
    assert params["delivery"] == {"mode": "none"} and params["declarationKey"].startswith("clawrelay-flush:")
    assert not (env.home / "service.json").exists()  # a dry run does nothing
    human = env.run("service", "install", "--dry-run", **fakes)
    assert "would call cron.add on here-gw (ws://127.0.0.1:9)" in human.out

    forced = env.run("service", "install", "--kind", "systemd", **fakes)
    assert forced.code == 1 and "no systemd user manager answers here" in forced.err
    assert not (Path(env.vars["XDG_CONFIG_HOME"]) / "systemd").exists()  # nothing written
    bad = env.run("service", "install", "--kind", "cron", "--gateway", "nope", "--dry-run")
    assert bad.code == 2 and len(bad.err.splitlines()) == 1 and "no gateway 'nope'" in bad.err
    short = env.run("service", "install", "--kind", "cron", "--interval", "10s", "--dry-run")
    assert short.code == 2 and "at most once a minute" in short.err
    down_routes(env)  # no gateway on this machine at all
    none = env.run("service", "install", "--kind", "cron")
    assert none.code == 2 and "runs on this machine" in none.err and "Traceback" not in none.err


# -- launchd (rendered, and a fake launchctl) ----------------------------------------------------


def test_launchd_install_writes_the_agent_and_bootstraps_it(env: Env) -> None:
    routes = down_routes(env)
    r = env.run("service", "install", "--kind", "launchd", "--dry-run", "--json")
    assert r.code == 0, r.err
    (file,) = r.json()["files"]
    plist_path = Path(env.vars["HOME"]) / "Library" / "LaunchAgents" / "ai.clawrelay.flush.plist"
    assert file["path"] == str(plist_path)
    plist = plistlib.loads(file["content"].encode())
    assert plist["Label"] == "ai.clawrelay.flush"
    assert plist["ProgramArguments"] == [
        CLAWRELAY,
        "serve",
        "--interval",
        "30s",
        "--config",
        str(routes),
    ]
    assert plist["EnvironmentVariables"]["CLAWRELAY_HOME"] == str(env.home)
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["RunAtLoad"] is True
    shipped = plistlib.loads((ROOT / "contrib" / "launchd" / "ai.clawrelay.flush.plist").read_bytes())
    assert set(shipped) == set(plist) and shipped["Label"] == plist["Label"]  # the example is the real thing

    fake_program(env, "launchctl", LAUNCHCTL)
    fakes = with_fakes(env)
    r = env.run("service", "install", "--kind", "launchd", **fakes)
    assert r.code == 0, r.err
    uid = os.getuid()
    written = plistlib.loads(plist_path.read_bytes())
    assert written["EnvironmentVariables"].pop("PATH").startswith(f"{env.tmp / 'bin'}:")  # the PATH it had
    plist["EnvironmentVariables"].pop("PATH")
    assert written == plist
    assert calls(env, "launchctl") == [
        ["print", f"gui/{uid}/ai.clawrelay.flush"],
        ["enable", f"gui/{uid}/ai.clawrelay.flush"],
        ["bootstrap", f"gui/{uid}", str(plist_path)],
    ]
    doc = env.run("service", "status", "--json", **fakes).json()
    assert doc["kind"] == "launchd" and doc["active"] is True and "pid 4242" in doc["active_detail"]
    assert env.run("service", "install", "--kind", "launchd", **fakes).code == 0
    assert len(calls(env, "launchctl")) == 5  # + status's print, + install's print: loaded, unchanged
    assert env.run("service", "uninstall", **fakes).code == 0
    assert calls(env, "launchctl")[-1] == ["bootout", f"gui/{uid}/ai.clawrelay.flush"]
    assert not plist_path.exists()


# -- the OpenClaw cron job, on the real gateway --------------------------------------------------


def cron_jobs(gateway: Gateway, home: Path) -> list[dict]:
    res = gateway.call("cron.list", {"includeDisabled": True})
    assert res["ok"], res
    return [j for j in res["payload"]["jobs"] if str(home) in (j.get("description") or "")]


def run_job(gateway: Gateway, job_id: str) -> dict:
    run = gateway.call("cron.run", {"id": job_id, "mode": "force"})
    assert run["ok"] and run["payload"]["runId"], run
    entry: dict = {}

    def ended() -> bool:
        nonlocal entry
        res = gateway.call("cron.runs", {"id": job_id, "runId": run["payload"]["runId"], "limit": 1})
        entry = (res["payload"].get("entries") or [{}])[0]
        return entry.get("status") in ("ok", "error", "skipped")

    wait_for(ended, 120)
    return entry


def test_cron_install_schedules_the_flusher_on_the_gateway_and_it_drains_in_order(
    env: Env, gateway: Gateway
) -> None:
    down_routes(env, f'gateways:\n  gw: {{url: "{gateway.url}", token: "${{{TOKEN_ENV}}}"}}\n')
    tok = {TOKEN_ENV: gateway.token}
    assert env.run("send", "s", "first").code == 1

    r = env.run("service", "install", "--kind", "cron", "--json", timeout=180, **tok)
    assert r.code == 0, r.out + r.err
    doc = r.json()
    job_id = doc["installed"]["job_id"]
    first = doc["installed"]["first_run"]
    # the target is still down: the pass ran, left it queued, and the gateway records the run ok
    assert first["ok"] is True and first["pass"]["left_queued"] == 1 and first["pass"]["service"] == "cron"
    (job,) = cron_jobs(gateway, env.home)
    assert job["id"] == job_id and job["state"]["lastRunStatus"] == "ok"

    st = env.run("service", "status", "--json", **tok)
    assert st.code == 0, st.err
    sdoc = st.json()
    assert (sdoc["kind"], sdoc["active"], sdoc["flusher_running"]) == ("cron", True, True)
    assert (
        sdoc["how"].startswith("the cron service ran a pass")
        and "scheduled every 5m" in sdoc["active_detail"]
    )
    assert env.run("send", "s", "second", "--json").json()["auto_retry"] is True
    assert flusher_check(env)["ok"] is True

    again = env.run("service", "install", "--kind", "cron", "--json", timeout=180, **tok)
    assert again.code == 0 and again.json()["installed"]["job_id"] == job_id
    assert [j["id"] for j in cron_jobs(gateway, env.home)] == [job_id]  # one job, not two

    (env.tmp / "up").touch()
    time.sleep(1.5)  # past the messages' backoff (1s ± 20 %)
    assert run_job(gateway, job_id)["status"] == "ok"
    assert delivered(env) == ["first", "second"]  # in the order they were sent

    gone = env.run("service", "uninstall", **tok)
    assert gone.code == 0 and f"cron job {job_id} removed" in gone.out, gone.err
    assert cron_jobs(gateway, env.home) == []
    assert env.run("service", "status", "--json", **tok).json()["installed"] is None
