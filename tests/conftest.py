"""Shared test helpers: an isolated clawrelay home, routes files, and the installed CLI as a subprocess.

Every test gets its own CLAWRELAY_HOME, HOME and working directory, so no user config, state or
proxy setting on the machine leaks in, and nothing a test writes outlives it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"
CLAWRELAY = shutil.which("clawrelay", path=str(Path(sys.executable).parent)) or shutil.which("clawrelay")


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

    def routes(self, text: str, name: str = "routes.yaml") -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def cmd(self, *args: str) -> list[str]:
        assert CLAWRELAY, "clawrelay is not installed in this environment (pip install -e .)"
        return [CLAWRELAY, *args]

    def run(self, *args: str, input: str | None = None, timeout: float = 60, **extra: str) -> Result:
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
        return subprocess.Popen(
            self.cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp,
            env={**self.vars, **extra},
        )

    def note(self) -> str:
        """The text of every daily memory note in the workspace, in date order."""
        return "".join(p.read_text() for p in sorted((self.workspace / "memory").glob("*.md")))


@pytest.fixture
def env(tmp_path: Path) -> Env:
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
def node(gateway):  # type: ignore[no-untyped-def]
    """One real node host ("xiaom"), paired to the session gateway and approved: its id.

    Its `openclaw` CLI uses the gateway's own config, as on a machine whose node host and gateway
    are the same OpenClaw: `openclaw system event|agent` run through node.invoke reach it.
    """
    from peer import node_connected

    node_id = gateway.start_node("xiaom")
    yield node_id
    wait_for(lambda: node_connected(gateway, node_id), 60)  # a later test may have restarted the gateway


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
