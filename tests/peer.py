"""A real OpenClaw gateway (with a local fake model) and node host on loopback, for tests and bench/.

Each instance gets its own folder (HOME, state dir, config, logs), its own free ports, and runs
in its own process group, which `stop()` ends by PID: nothing outlives the test session, and no
port stays taken. Node 24 and openclaw come from `scripts/install-openclaw.sh`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).parent / "programs"
TOKEN = "clawrelay-test-token-5b1e"


_GIVEN: set[int] = set()


def _own_ports() -> range:
    """This process's share of the ports the kernel never picks on its own.

    A port from `bind(0)` is free only until the next `bind(0)`: the kernel may hand the very
    same one out again (a gateway and its model got one port between them, and the gateway
    could not start), and any outgoing connection may take it meanwhile. Ports below the
    ephemeral range are only ever taken by someone who asks for them by number, and each of up to
    eight pytest workers asks in a slice of its own (anything else, bench/ included, in a ninth),
    so they do not race for one; `_bindable` skips what another program holds."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 1 >= 12000:
        start, stop = 10000, low  # the usual case: 10000..32767
    elif high + 1 <= 63000:
        start, stop = high + 1, 65536
    else:
        return range(0)  # the kernel may pick any port: leave it to bind(0)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    slots = 9
    slot = int(worker[2:]) % (slots - 1) if worker.startswith("gw") and worker[2:].isdigit() else slots - 1
    width = (stop - start) // slots
    return range(start + slot * width, start + (slot + 1) * width)


def _bindable(port: int) -> bool:
    """Nothing listens on it (nor is it bound) on 127.0.0.1, or on ::1 where there is one."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
                s.bind((host, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue  # no IPv6 loopback here
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, never handed out before in this process."""
    ports = _own_ports()
    if ports:
        first = random.randrange(len(ports))
        for i in range(len(ports)):
            port = ports[(first + i) % len(ports)]
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def openclaw_bin() -> Path:
    """The folder with `node` and `openclaw`, installing them the first time."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-openclaw.sh")], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(f"install-openclaw.sh failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def _stop_group(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM to the process group `proc` leads, SIGKILL after `timeout`. The leader is reaped
    as it exits: unreaped, it would keep its group alive (a zombie answers killpg) for the
    whole timeout."""
    pid = proc.pid
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        proc.poll()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class Gateway:
    """`openclaw gateway run` on 127.0.0.1:<port>, token auth, its model on another port."""

    def __init__(
        self,
        bin_dir: Path,
        folder: Path,
        *,
        token: str = TOKEN,
        port: int | None = None,
        path: str | None = None,
        in_workspace: bool = False,
    ) -> None:
        """`path`: the gateway's PATH (default this process's, after openclaw's); `in_workspace`: run
        it from its workspace, as a service does, instead of its folder."""
        self.bin_dir = bin_dir
        self.path = path or f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.in_workspace = in_workspace
        self.dir = folder
        self.token = token
        self.port = port or free_port()
        self.model_port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.state = self.dir / "state"
        self.workspace = self.state / "workspace"
        self.prompt_log = self.dir / "prompts.jsonl"

    def env(self) -> dict[str, str]:
        """The environment `openclaw` needs to act on this instance (and nothing of the host's)."""
        return {
            "PATH": self.path,
            "HOME": str(self.dir / "home"),
            "OPENCLAW_STATE_DIR": str(self.state),
            "OPENCLAW_CONFIG_PATH": str(self.state / "openclaw.json"),
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_SKIP_CHANNELS": "1",
            "LANG": "C.UTF-8",
        }

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        self.procs[name] = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd or self.dir,
        )
        log.close()

    def start(self, timeout: float = 180.0) -> Gateway:
        (self.dir / "home").mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        if "model" not in self.procs:
            pidfile = self.dir / "model.pid"
            pidfile.unlink(missing_ok=True)
            self._spawn(
                "model",
                [
                    sys.executable,
                    str(PROGRAMS / "fake_model.py"),
                    str(self.model_port),
                    str(pidfile),
                    str(self.prompt_log),
                ],
                {
                    "PATH": os.environ.get("PATH", ""),
                    **{k: v for k, v in os.environ.items() if k.startswith("FAKE_MODEL_")},
                },
            )
        config = {
            "gateway": {
                "mode": "local",
                "bind": "loopback",
                "port": self.port,
                "auth": {"mode": "token", "token": self.token},
            },
            "telemetry": {"enabled": False},
            "models": {
                "mode": "merge",
                "providers": {
                    "fake": {
                        "baseUrl": f"http://127.0.0.1:{self.model_port}/v1",
                        "apiKey": "sk-fake-local",
                        "api": "openai-completions",
                        "timeoutSeconds": 60,
                        "models": [
                            {
                                "id": "fake-model",
                                "name": "Fake Model",
                                "reasoning": False,
                                "input": ["text"],
                                "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                                "contextWindow": 128000,
                                "maxTokens": 4096,
                            }
                        ],
                    }
                },
            },
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        }
        (self.state / "openclaw.json").write_text(json.dumps(config, indent=1))
        if self.in_workspace:
            self.workspace.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "gateway",
            [str(self.bin_dir / "openclaw"), "gateway", "run"],
            self.env(),
            self.workspace if self.in_workspace else None,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            proc = self.procs["gateway"]
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited {proc.returncode}:\n{self.log_tail()}")
            if self.call("health", timeout=5).get("ok"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"gateway not ready after {timeout:g}s:\n{self.log_tail()}")

    def log_tail(self, name: str = "gateway", lines: int = 30) -> str:
        path = self.dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        """One request with the test token; {"ok": false, ...} when the gateway cannot be reached."""
        from clawrelay.openclaw import ALL_SCOPES, GatewayError, open_gateway

        async def go() -> dict:
            try:
                client = await open_gateway(
                    self.url,
                    name="test",
                    token=self.token,
                    home=self.dir / "client",
                    scopes=ALL_SCOPES,
                    timeout=timeout,
                )
            except GatewayError as e:
                return {"ok": False, "error": e.to_json()}
            try:
                return {"ok": True, "payload": await client.request(method, params or {}, timeout=timeout)}
            except GatewayError as e:
                return {"ok": False, "error": e.to_json()}
            finally:
                await client.close()

        return asyncio.run(go())

    def history(self, session: str = "agent:main:main", limit: int = 50) -> list[str]:
        """The texts of a session's messages, oldest first."""
        res = self.call("chat.history", {"sessionKey": session, "limit": limit})
        assert res["ok"], res
        out = []
        for m in res["payload"].get("messages") or []:
            content = m.get("content")
            if isinstance(content, list):
                content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
            out.append(f"{m.get('role')}: {content}")
        return out

    def user_messages(self, session: str, containing: str) -> list[str]:
        """The user-side messages of a session that contain a text (a message id, say)."""
        return [m for m in self.history(session) if m.startswith("user:") and containing in m]

    def prompts_containing(self, text: str) -> list[str]:
        """What the model was asked that contains a text (a system event shows up only here)."""
        if not self.prompt_log.exists():
            return []
        return [p for line in self.prompt_log.read_text().splitlines() if text in (p := json.loads(line))]

    def start_node(
        self, name: str, timeout: float = 120.0, *, approve: bool = True, env: dict[str, str] | None = None
    ) -> str:
        """A node host paired to this gateway: its node id once approved, or (approve=False) the
        id of its pairing request, left waiting. `env`: more variables for the node host's own
        environment (a proxy set on that machine, say). Its state dir, and so its exec approvals,
        are its own (`node_home(name)/state`)."""
        env = {
            **self.env(),
            "HOME": str(self.node_home(name)),
            "OPENCLAW_GATEWAY_TOKEN": self.token,
            "OPENCLAW_STATE_DIR": str(self.node_home(name) / "state"),
            **(env or {}),
        }
        Path(env["OPENCLAW_STATE_DIR"]).mkdir(parents=True, exist_ok=True)
        self._spawn(
            f"node-{name}",
            [
                str(self.bin_dir / "openclaw"),
                "node",
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--display-name",
                name,
            ],
            env,
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pending = (self.call("node.pair.list").get("payload") or {}).get("pending") or []
            for p in pending:
                if not approve:
                    if p.get("displayName") == name:
                        return str(p["requestId"])
                    continue
                self.call("node.pair.approve", {"requestId": p["requestId"]})
            nodes = (self.call("node.list").get("payload") or {}).get("nodes") or []
            for n in nodes:
                if (
                    n.get("displayName") == name
                    and n.get("connected")
                    and n.get("approvalState") == "approved"
                ):
                    return str(n["nodeId"])
            time.sleep(0.5)
        raise RuntimeError(f"node {name} not approved in {timeout:g}s:\n{self.log_tail(f'node-{name}')}")

    def node_home(self, name: str) -> Path:
        """The HOME of node host `name` (what `~` is for the commands it runs)."""
        return self.dir / f"node-{name}"

    def openclaw(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """The `openclaw` CLI on this gateway's machine, as its operator runs it (`openclaw
        approvals allowlist add --node …`, say)."""
        return subprocess.run(
            [str(self.bin_dir / "openclaw"), *args],
            capture_output=True,
            text=True,
            env={**self.env(), "OPENCLAW_GATEWAY_TOKEN": self.token},
            timeout=timeout,
            cwd=self.dir,
        )

    def stop_node(self, name: str) -> None:
        proc = self.procs.pop(f"node-{name}", None)
        if proc is not None:
            _stop_group(proc)
            proc.wait()

    def stop_gateway(self) -> None:
        """Stop only the gateway (its model and nodes stay), as a restart or an outage would."""
        proc = self.procs.pop("gateway", None)
        if proc is not None:
            _stop_group(proc)
            proc.wait()

    def stop(self) -> None:
        for name in [n for n in self.procs if n.startswith("node-")] + ["gateway", "model"]:
            proc = self.procs.pop(name, None)
            if proc is not None:
                _stop_group(proc)
                proc.wait()


@contextlib.contextmanager
def running_gateway(
    folder: Path, *, port: int | None = None, start: bool = True, **options: object
) -> Iterator[Gateway]:
    """A gateway in `folder` (started unless `start=False`: a port to bring up later), stopped
    with everything it started on the way out. `options`: Gateway's (path, in_workspace)."""
    gw = Gateway(openclaw_bin(), folder, port=port, **options)  # type: ignore[arg-type]
    try:
        if start:
            gw.start()
        yield gw
    finally:
        gw.stop()


def set_exec_policy(gw: Gateway, node_id: str, **defaults: str) -> None:
    """Replace a node's exec approvals defaults (security, ask, askFallback) through the gateway."""
    current = gw.call("exec.approvals.node.get", {"nodeId": node_id})
    assert current["ok"], current
    res = gw.call(
        "exec.approvals.node.set",
        {
            "nodeId": node_id,
            "baseHash": current["payload"].get("hash"),
            "file": {"version": 1, "defaults": defaults},
        },
    )
    assert res["ok"], res


def node_connected(gw: Gateway, node_id: str) -> bool:
    nodes = (gw.call("node.list").get("payload") or {}).get("nodes") or []
    return any(n.get("nodeId") == node_id and n.get("connected") for n in nodes)
