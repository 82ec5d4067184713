"""The local carrier: a subprocess in its own process group, killed as a group at its deadline.

A program that forks (a shell, a notifier that spawns a helper) must not outlive the deadline,
so the child leads a new session and the whole group gets SIGKILL. The same happens when the
caller is cancelled (the router's own timeout), so no attempt leaves work running behind it.

Nor may it outlive clawrelay itself: a sender killed with `kill -9` runs no cleanup, and a
program in its own session would run on with nobody to record what it did. So the program runs
under a tiny `sh` (LIFELINE) that also starts a watcher on a pipe whose only writer is this
process: when this process dies, however it dies, the kernel closes the pipe, the watcher reads
end-of-file and kills the whole group. When the program ends by itself the watcher is stopped and
nothing else in the group is touched, as before.
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
from clawrelay.errors import Reason, TransportError

_DRAIN_S = 1.0  # after a kill, how long to wait for the pipes to close

# $1: the number of the pipe's read end; then the program's argv. The watcher reads the pipe (as
# /dev/fd/N: a shell cannot redirect from a variable fd number past 9) and, at end-of-file
# (clawrelay is gone), kills the process group it shares with the program. The program keeps
# the read end open, which holds nothing up: only a writer keeps a pipe from its end.
LIFELINE = r"""
case $1 in ''|*[!0-9]*) exit 70 ;; esac
{ read -r _ </dev/fd/$1; kill -KILL 0; } </dev/null &
watcher=$!
shift
"$@"
status=$?
kill -KILL $watcher 2>/dev/null
exit $status
"""


def _program(argv0: str, env: Mapping[str, str] | None, cwd: str | None) -> str:
    """The program as exec(2) would find it, said missing or not runnable before the lifeline's
    shell would. A name is resolved on PATH here, so the shell gets a path and never runs a
    builtin of the same name (its `echo`, `kill` or `true`) in the program's place."""
    import shutil

    if "/" in argv0:
        where = os.path.join(cwd or "", argv0)
        if not os.path.exists(where):
            raise TransportError(f"{argv0}: command not found", reason=Reason.NOT_FOUND)
        if os.path.isdir(where) or not os.access(where, os.X_OK):
            raise TransportError(f"{argv0}: permission denied", reason=Reason.FORBIDDEN)
        return argv0
    found = shutil.which(argv0, path=(env if env is not None else os.environ).get("PATH", os.defpath))
    if found is None:
        raise TransportError(f"{argv0}: command not found", reason=Reason.NOT_FOUND)
    return found


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
    from clawrelay.relay import context

    t0 = time.monotonic()
    if cwd is None:
        cwd = context.cwd()  # inside a relay: the folder the command was started in
    umask = context.umask()  # inside a relay: the client's (None: this process's own)
    if cwd is not None and not os.path.isdir(cwd):
        raise TransportError(f"{cwd}: no such folder", reason=Reason.NOT_FOUND)
    program = _program(argv[0], env, cwd)
    lifeline, keep = os.pipe()  # the child gets the read end; this process alone holds the other
    os.set_inheritable(keep, False)
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            LIFELINE,
            "clawrelay-lifeline",
            str(lifeline),
            program,
            *argv[1:],
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            pass_fds=(lifeline,),
            umask=-1 if umask is None else umask,
        )
    except OSError as e:  # /bin/sh itself could not be started
        os.close(keep)
        raise TransportError(f"cannot start {argv[0]}: {e.strerror or e}", reason=Reason.NOT_FOUND) from e
    finally:
        os.close(lifeline)
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
        # reaped before the loop that started it closes (asyncio.run after a Ctrl-C): its
        # transport is then closed here, not garbage-collected by a closed loop later
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), _DRAIN_S)
        raise
    finally:
        os.close(keep)
    assert proc.returncode is not None
    return RunResult(proc.returncode, False, out, err, int((time.monotonic() - t0) * 1000))


class LocalCarrier:
    """This machine, as a host: the same interface as ssh and node, with proxies shed from env."""

    name = "local"
    label = "local"

    def __init__(self, *, strip_proxy: bool = True) -> None:
        self.strip_proxy = strip_proxy

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        if cwd is not None:
            cwd = os.path.expanduser(cwd)
            if not os.path.isdir(cwd):
                raise TransportError(f"{cwd}: no such folder", reason=Reason.NOT_FOUND)
        return await run(
            argv,
            timeout=timeout,
            stdin=stdin,
            cwd=cwd,
            on_spawn=on_spawn,
            env=local_env(strip=self.strip_proxy),
        )

    async def home(self) -> str:
        return os.path.expanduser("~")
