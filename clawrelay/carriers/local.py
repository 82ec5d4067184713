"""The local carrier: a subprocess in its own process group, killed as a group at its deadline.

A program that forks (a shell, a notifier that spawns a helper) must not outlive the deadline,
so the child leads a new session and the whole group gets SIGKILL. The same happens when the
caller is cancelled (the router's own timeout), so no attempt leaves work running behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence

from clawrelay.carriers.proxy import local_env
from clawrelay.carriers.result import TIMEOUT_EXIT, RunResult
from clawrelay.errors import TransportError

_DRAIN_S = 1.0  # after a kill, how long to wait for the pipes to close


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    on_spawn: Callable[[], None] | None = None,
) -> RunResult:
    t0 = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as e:
        raise TransportError(f"{argv[0]}: command not found", reason="not_found") from e
    except PermissionError as e:
        raise TransportError(f"{argv[0]}: permission denied", reason="forbidden") from e
    if on_spawn is not None:
        on_spawn()
    talk = asyncio.ensure_future(proc.communicate(stdin))
    try:
        out, err = await asyncio.wait_for(asyncio.shield(talk), timeout)
    except TimeoutError:
        _kill_group(proc)
        out, err = b"", b""
        with contextlib.suppress(TimeoutError):
            out, err = await asyncio.wait_for(talk, _DRAIN_S)
        return RunResult(TIMEOUT_EXIT, True, out, err, int((time.monotonic() - t0) * 1000))
    except BaseException:
        _kill_group(proc)
        talk.cancel()
        raise
    assert proc.returncode is not None
    return RunResult(proc.returncode, False, out, err, int((time.monotonic() - t0) * 1000))


class LocalCarrier:
    """This machine, as a host: the same interface as ssh and node, with proxies shed from env."""

    name = "local"
    label = "local"

    def __init__(self, *, strip_proxy: bool = True) -> None:
        self.strip_proxy = strip_proxy

    async def run(self, argv: Sequence[str], *, timeout: float, cwd: str | None = None,
                  stdin: bytes | None = None, on_spawn: Callable[[], None] | None = None) -> RunResult:
        if cwd is not None:
            cwd = os.path.expanduser(cwd)
            if not os.path.isdir(cwd):
                raise TransportError(f"{cwd}: no such folder", reason="not_found")
        return await run(argv, timeout=timeout, stdin=stdin, cwd=cwd, on_spawn=on_spawn,
                         env=local_env(strip=self.strip_proxy))

    async def home(self) -> str:
        return os.path.expanduser("~")
