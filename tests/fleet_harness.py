"""Helpers for the fleet's integration tests (test_fleet_redis; any other fleet test may use them):
relays of one Redis, each with its own state dir and routes.yaml.

A relay here is a real `clawrelay serve` in its own Env (`new_env(tmp_path / NAME)`), started and
stopped by PID. The Redis password is never in routes.yaml: the URL says `${FLEET_PW}` and each
Env gets the variable, as a real machine would from its secrets file.

    from fleet_harness import Fleet, command_target, dead_target

    fleet = Fleet(tmp_path, redis_db)                          # redis_db: tests/redis_server.py
    a = fleet.relay("a", dead_target("t"))                     # its routes, then `serve`
    b = fleet.relay("b", command_target("t", tmp_path / "b.out"))
    fleet.wait(lambda: fleet.alive() == {"a", "b"})            # `fleet status --json`, polled
    ...
    fleet.close()                                              # every relay: SIGTERM, exit 0, no traceback

API (everything else in this module is internal):
- `Fleet(tmp_path, server, heartbeat=0.5, ttl=2.0)`: `server` is anything with `.url` and
  `.password` (a `RedisServer`, started or not).
- `Fleet.env(name, targets, *, fleet_extra="", url=None) -> Env`: an Env with routes.yaml for
  node `name` (routes' `self` is `name` too), the given `targets:` body (YAML lines, each
  indented by two spaces, as `command_target` and `dead_target` give), FLEET_PW set; not started.
- `Fleet.relay(name, targets, *args, ...) -> Relay`: `Fleet.env` then `Fleet.start`.
- `Fleet.start(env, *args) -> Relay`: `clawrelay serve --interval 1h ARGS` of that Env, once its
  socket answers; `Fleet.start_all(envs, *args) -> list[Relay]`: several at once (faster).
- `Fleet.status(env=None) -> dict`: `fleet status --json` (from `env`, or the first Env made);
  `Fleet.alive(env=None) -> set[str]`: the nodes it shows alive.
- `Fleet.wait(predicate, timeout=15, what="") -> value`: polls until `predicate()` is truthy and
  returns that value; fails with `what` (and the last value seen) after `timeout` seconds.
- `Fleet.close()`: stops each relay still running (SIGTERM; SIGKILL after 30 s) and asserts
  it exited 0 without a traceback; then ends anything else the Envs spawned.
- `Relay`: `.env`, `.name`, `.pid`, `.proc`; `.stop() -> (code, stdout, stderr)` (SIGTERM, by
  PID, once), `.kill()` (SIGKILL), `.running()`, `.stat()` (the relay's `stat`: its "fleet"
  entry says connected, leader, token, error; absent until the member starts).
- `command_target(name, out)`: a target whose only step runs `sh -c 'echo $CLAWRELAY_ID >> OUT'`
  (exit 0: delivered; one line per delivery). `exit_code=75` makes it fail retryably instead.
- `dead_target(name)`: a target whose only step is `sessions_send` to a gateway on a port nothing
  listens on (its probe fails, a send is queued); it needs `dead_gateway()` in the routes'
  `gateways:`, which `Fleet.env` always writes.
- `lines(path) -> list[str]`: a file's lines, [] when it does not exist.
- `FLEET_PW`: the name of the variable that holds the password.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Env, new_env
from peer import free_port

FLEET_PW = "FLEET_PW"

_DEAD_PORT = free_port()  # nothing listens here (a port just freed, kept for the whole session)


def command_target(name: str, out: Path, exit_code: int = 0) -> str:
    script = f"echo $CLAWRELAY_ID >> {shlex.quote(str(out))}" + (f"; exit {exit_code}" if exit_code else "")
    argv = json.dumps(["sh", "-c", script])
    return f"  {name}: {{chain: [command: {{argv: {argv}, retries: 0, timeout: 10s}}]}}\n"


def dead_target(name: str) -> str:
    return f"  {name}: {{chain: [sessions_send: {{gateway: dead, timeout: 2s, retries: 0}}]}}\n"


def dead_gateway() -> str:
    return f'  dead: {{url: "ws://127.0.0.1:{_DEAD_PORT}", token: "x"}}\n'


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class Relay:
    """A `clawrelay serve --interval 1h ARGS` of one Env, started and stopped by PID (as conftest's
    RelayProcess, but started without waiting: `ready()` waits, so several start at once)."""

    def __init__(self, env: Env, name: str, *args: str) -> None:
        self.env, self.name = env, name
        # --interval 1h: its flusher makes its pass at start and then keeps out of the test's way
        self.proc = env.spawn("serve", "--interval", "1h", *args)
        self.pid = self.proc.pid
        self.result: tuple[int, str, str] | None = None

    def ready(self, timeout: float = 30.0) -> Relay:
        """Once its socket answers; fails with its stderr when it exits first."""
        end = time.monotonic() + timeout
        while not self.stat().get("running"):
            if self.proc.poll() is not None:
                code, _, err = self.stop()
                raise AssertionError(f"clawrelay serve ({self.name}) exited {code}: {err[-3000:]}")
            assert time.monotonic() < end, f"relay {self.name} did not answer within {timeout:g}s"
            time.sleep(0.05)
        return self

    def stat(self) -> dict[str, Any]:
        """The relay's `stat` (with "fleet": its member's view: connected, leader, token, error),
        or {"running": False}."""
        from clawrelay.relay.client import ask_stat

        return ask_stat(str(self.env.home))

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, and its exit status, stdout and stderr (once; later calls return the same)."""
        if self.result is None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                out, err = self.proc.communicate(timeout=30)
            except Exception:
                self.proc.kill()
                out, err = self.proc.communicate(timeout=30)
            self.result = (self.proc.returncode, out, err)
        return self.result

    def kill(self) -> None:
        """SIGKILL: a crash, no leaving."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.result = (self.proc.returncode, "", "")


class Fleet:
    def __init__(self, tmp_path: Path, server: Any, *, heartbeat: float = 0.5, ttl: float = 2.0) -> None:
        self.tmp, self.server = tmp_path, server
        self.heartbeat, self.ttl = heartbeat, ttl
        self.envs: list[Env] = []
        self.relays: list[Relay] = []

    def env(self, name: str, targets: str, *, fleet_extra: str = "", url: str | None = None) -> Env:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        env = new_env(self.tmp / name)
        env.vars[FLEET_PW] = self.server.password
        if url is None:
            url = self.server.url.replace(f":{self.server.password}@", f":${{{FLEET_PW}}}@")
        env.routes(
            f"version: 1\n"
            f"self: {name}\n"
            f"gateways:\n{dead_gateway()}"
            f"targets:\n{targets}"
            f"fleet:\n"
            f'  redis: "{url}"\n'
            f"  node: {name}\n"
            f"  heartbeat: {self.heartbeat:g}s\n"
            f"  ttl: {self.ttl:g}s\n"
            f"{fleet_extra}"
        )
        self.envs.append(env)
        return env

    def start(self, env: Env, *args: str) -> Relay:
        return self.start_all([env], *args)[0]

    def start_all(self, envs: list[Env], *args: str) -> list[Relay]:
        """Start a relay for each Env at once; return them once every one answers."""
        started = [Relay(env, env.tmp.name, *args) for env in envs]
        self.relays += started
        return [r.ready() for r in started]

    def relay(self, name: str, targets: str, *args: str, fleet_extra: str = "") -> Relay:
        return self.start(self.env(name, targets, fleet_extra=fleet_extra), *args)

    def status(self, env: Env | None = None) -> dict[str, Any]:
        r = (env or self.envs[0]).run("fleet", "status", "--json")
        assert r.code == 0, f"fleet status exited {r.code}: {r.err}"
        return r.json()  # type: ignore[return-value]

    def alive(self, env: Env | None = None) -> set[str]:
        return {n["node"] for n in self.status(env)["nodes"] if n["alive"]}

    def wait(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        end = time.monotonic() + timeout
        last: Any = None
        while True:
            last = predicate()
            if last:
                return last
            assert time.monotonic() < end, f"not within {timeout:g}s: {what} (last: {last!r})"
            time.sleep(0.1)

    def close(self) -> None:
        problems = []
        for relay in self.relays:
            was_running = relay.running()
            code, _, err = relay.stop()
            if was_running and (code != 0 or "Traceback" in err):
                problems.append(f"relay {relay.name} exited {code}: {err[-3000:]}")
        for env in self.envs:
            env.end_spawned()
        assert not problems, "\n".join(problems)
