"""Shared test helpers: an isolated clawrelay home, routes files, and the installed CLI as a subprocess.

Every test gets its own CLAWRELAY_HOME, HOME and working directory, so no user config, state or
proxy setting on the machine leaks in, and nothing a test writes outlives it.

The marker `integration` is on every test that starts a server or any other listening process, or
runs the real OpenClaw; `pytest -m "not integration"` is the fast layer (see SERVER_FIXTURES below
for how the marker is applied, and `pytest_runtest_protocol` for the guard that keeps it so).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import forkrun
import pytest

PROGRAMS = Path(__file__).parent / "programs"
if forkrun.enabled():
    forkrun.preload()
CLAWRELAY = shutil.which("clawrelay", path=str(Path(sys.executable).parent)) or shutil.which("clawrelay")

# -- the fast layer: `integration` on every test that starts a server ------------------------------
#
# A test is marked `integration` when it starts an OpenClaw gateway or node host (tests/peer.py),
# an sshd (tests/sshd.py), the fake Bot API (tests/bot_api.py), an HTTP proxy, Redis, an in-process
# fake gateway or web server, or anything else that listens on a port; or when it runs the real
# OpenClaw or OpenSSH (scripts/install-openclaw.sh, install-sshd.sh: Node and npm downloads on a
# fresh machine). The rest, the fast layer, needs nothing but the venv. A test gets the marker:
#   1. from its fixtures: every test whose fixture closure (direct or through another fixture)
#      holds one of SERVER_FIXTURES, by `pytest_collection_modifyitems` below;
#   2. by hand, where a test starts its server in its own body or through
#      `request.getfixturevalue`: `pytestmark = pytest.mark.integration` in a module whose every
#      test does, `@pytest.mark.integration` on the test, or `pytest.param(..., marks=...)` on a
#      fixture's param.
# A test without the marker that starts one anyway fails with the way to fix it
# (`pytest_runtest_protocol` below), so the fast layer itself finds a forgotten marker.

SERVER_FIXTURES = {
    # name: where it is defined, what it starts
    "gateway": "conftest: the session's OpenClaw gateway and its fake model",
    "node": "conftest: a node host paired to the session gateway",
    "sshd": "conftest: OpenSSH on a loopback port",
    "redis_server": "conftest: Redis on a loopback port (and `redis_db`, the same emptied)",
    "bot_api": "test_doctor, test_telegram: the fake Bot API server",
    "bot": "test_secrets_file: the fake Bot API server",
    "gw": "test_events: the module's own gateway",
    "second": "test_fleet: a second gateway",
    "third": "test_fleet: a third gateway, started by its tests",
    "xiaoa": "test_skill_path: a gateway whose model follows SKILL.md",
}
# What a test without the marker must not start: a program by argv[0]'s name (`openclaw` is the
# real one, its gateway, node host or CLI), or a script of tests/programs or scripts/ by name.
SERVER_PROGRAMS = {"sshd", "redis-server", "openclaw"}
SERVER_SCRIPTS = {
    "fake_telegram.py",
    "fake_model.py",
    "http_proxy.py",
    "install-openclaw.sh",
    "install-sshd.sh",
    "install-redis.sh",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _starts_a_server(argv: object) -> bool:
    args = [str(a) for a in argv] if isinstance(argv, list | tuple) else str(argv).split()
    names = [Path(a).name for a in args]
    relay = len(names) > 1 and names[0] == "clawrelay" and "serve" in names[1:3]
    return bool(names) and (relay or names[0] in SERVER_PROGRAMS or bool(SERVER_SCRIPTS & set(names)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """A test without the `integration` marker runs (its fixtures of every scope set up and torn
    down included) with no listening socket in this process, no server or real OpenClaw started,
    and no server fixture asked for at run time: each fails it, with the fix."""
    if item.get_closest_marker("integration"):
        return (yield)

    def refused(what: str) -> AssertionError:
        return AssertionError(f"{item.nodeid} {what}: mark it `integration` (see tests/conftest.py)")

    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    getfixturevalue = pytest.FixtureRequest.getfixturevalue

    def listen(self: socket.socket, *args: object) -> None:
        raise refused("listens on a port")

    def spawn(self: subprocess.Popen[object], args: object, *rest: object, **kw: object) -> None:
        if _starts_a_server(args):
            raise refused(f"starts a server ({args!r})")
        execute_child(self, args, *rest, **kw)

    def fixture_value(self: pytest.FixtureRequest, argname: str) -> object:
        if argname in SERVER_FIXTURES:
            raise refused(f"asks for the server fixture {argname!r}")
        return getfixturevalue(self, argname)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "listen", listen)
        patch.setattr(subprocess.Popen, "_execute_child", spawn)
        patch.setattr(pytest.FixtureRequest, "getfixturevalue", fixture_value)
        return (yield)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def program(name: str, *args: object) -> list[str]:
    """argv running one of tests/programs with this interpreter."""
    return [sys.executable, str(PROGRAMS / name), *map(str, args)]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Env:
    tmp: Path
    home: Path  # CLAWRELAY_HOME
    workspace: Path
    vars: dict[str, str]
    spawned: list[subprocess.Popen[str]] = field(default_factory=list)  # ended by the fixture

    def routes(self, text: str, name: str = "routes.yaml") -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def cmd(self, *args: str) -> list[str]:
        assert CLAWRELAY, "clawrelay is not installed in this environment (pip install -e .)"
        return [CLAWRELAY, *args]

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        fork: bool = True,
        **extra: str,
    ) -> Result:
        """The CLI's exit status and output; in a forked child of this process where it can be
        (tests/forkrun.py says when and what that keeps true), else the console script."""
        if fork and forkrun.can_fork():
            code, out, err = forkrun.run(
                self.cmd(*args), input=input, cwd=str(self.tmp), env={**self.vars, **extra}, timeout=timeout
            )
            return Result(code, out, err)
        p = subprocess.run(
            self.cmd(*args),
            input=input,
            capture_output=True,
            text=True,
            cwd=self.tmp,
            env={**self.vars, **extra},
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def spawn(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp,
            env={**self.vars, **extra},
        )
        self.spawned.append(proc)
        return proc

    def end_spawned(self) -> None:
        """Kill, by PID, each process `spawn` started that is still running (a test that failed
        before it reaped them), and close their pipes."""
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()

    def note(self) -> str:
        """The text of every daily memory note in the workspace, in date order."""
        return "".join(p.read_text() for p in sorted((self.workspace / "memory").glob("*.md")))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = new_env(tmp_path)
    yield made
    made.end_spawned()


class RelayProcess:
    """A `clawrelay serve` of one Env, started and stopped by PID."""

    def __init__(self, env: Env, *args: str) -> None:
        from clawrelay.relay.address import socket_path
        from clawrelay.relay.client import ask_stat

        self.env = env
        self.socket = socket_path(env.home)
        # --interval 1h: its flusher makes its pass at start and then keeps out of the test's way
        self.proc = env.spawn("serve", "--interval", "1h", *args)
        self.pid = self.proc.pid
        end = time.monotonic() + 60
        while not ask_stat(str(env.home)).get("running"):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"clawrelay serve exited {self.proc.returncode}: {self.proc.stderr.read()}"
                )  # type: ignore[union-attr]
            assert time.monotonic() < end, "the relay did not answer within 60 s"
            time.sleep(0.05)

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, and its exit status and output."""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def _relay_param(mode: str) -> object:
    # the relay is a server: a test run with it is an integration test, its in-process twin not
    return pytest.param(mode, id=mode, marks=pytest.mark.integration) if mode == "relay" else mode


@pytest.fixture(params=[_relay_param("in-process"), _relay_param("relay")])
def relay_mode(request: pytest.FixtureRequest, env: Env) -> Iterator[RelayProcess | None]:
    """Run the test twice: each command in its own process, and each inside a relay (`clawrelay
    serve` on the test's state dir). Same assertions: output, exit codes and journal must agree."""
    if request.param != "relay":
        yield None
        return
    relay = RelayProcess(env)
    yield relay
    code, _, err = relay.stop()
    assert code == 0, f"the relay exited {code}: {err[-2000:]}"
    assert "Traceback" not in err, err[-4000:]


def new_env(tmp_path: Path) -> Env:
    """An isolated Env in `tmp_path` (what the `env` fixture gives; for wider-scoped fixtures too)."""
    home = tmp_path / "state"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "PYTHONPATH", "VIRTUAL_ENV")
    }
    variables = {
        **keep,
        "HOME": str(tmp_path / "home"),
        "CLAWRELAY_HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
    }
    return Env(tmp_path, home, workspace, variables)


def header(workspace: Path) -> str:
    """routes.yaml lines shared by most tests: this instance and a local host with a workspace."""
    return textwrap.dedent(f"""
    version: 1
    self: tester
    hosts:
      here: {{local: true, workspace: "{workspace}"}}
    """)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real OpenClaw gateway (and fake model) for the whole session: ~20 s and ~1 GB to start."""
    from peer import running_gateway

    with running_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture(scope="session")
def _xiaom_node(gateway):  # type: ignore[no-untyped-def]
    """One real node host ("xiaom"), paired to the session gateway and approved: its id.

    Its `openclaw` CLI uses the gateway's own config, as on a machine whose node host and gateway
    are the same OpenClaw: `openclaw system event|agent` run through node.invoke reach it.
    """
    return gateway.start_node("xiaom")


@pytest.fixture
def node(gateway, _xiaom_node):  # type: ignore[no-untyped-def]
    """The session's node host, connected when the test starts: a test before this one may have
    restarted the gateway, and the node host takes a moment to come back."""
    from peer import node_connected

    wait_for(lambda: node_connected(gateway, _xiaom_node), 60)
    return _xiaom_node


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real OpenSSH server on a loopback port, logging in the user running the tests."""
    from sshd import Sshd, sshd_bin

    server = Sshd(tmp_path_factory.mktemp("sshd"))
    try:
        server.start(sshd_bin())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Redis server on a loopback port, password and append-only file on (tests/redis_server.py)."""
    from redis_server import RedisServer, redis_bin

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start(redis_bin())
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_server):  # type: ignore[no-untyped-def]
    """The session's Redis server, emptied (FLUSHALL) for this test."""
    redis_server.cli("FLUSHALL")
    return redis_server
