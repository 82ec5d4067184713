"""What a command run inside the relay sees as its own process.

In its own process a command has stdin, stdout and stderr, an environment, a working folder, an
event loop of its own (`asyncio.run`) and the terminal's Ctrl-C. Inside the relay, many commands
run at once, each in a worker thread, and each must see the client's: so `sys.stdin/stdout/
stderr` and `os.environ` become proxies that answer with the current request's (a ContextVar,
which follows the command from its thread into the tasks it starts on the relay's loop), and
the few places that start a loop, read the working folder or catch signals ask this module
instead of the process (`run`, `cwd`, `on_stop_signals`). Outside a relay, every function here
does what the process itself would: the in-process path pays one ContextVar lookup.

Only the standard library is imported: the router and the CLI's helpers import this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # asyncio and concurrent.futures load when a loop is needed, not with paths
    import asyncio
    import io

T = TypeVar("T")

current: ContextVar[Request | None] = ContextVar("clawrelay_request", default=None)
_resident: Any = None  # the relay's shared connections (server.Resident), in the relay process only


class Request:
    """One command running inside the relay: the client's streams, environment and folder, and
    the way its coroutines reach the relay's loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        env: dict[str, str],
        cwd: str,
        stdin: io.TextIOBase,
        stdout: io.TextIOBase,
        stderr: io.TextIOBase,
        wake: int,
        umask: int | None = None,
    ) -> None:
        self.loop = loop
        self.env = env
        self.cwd = cwd
        self.umask = umask  # the client's, for the programs the command starts
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interrupted = False
        self.stopping = False
        self.on_interrupt: Callable[[], None] | None = None
        self.routers: list[Any] = []  # stopped (attempts in flight finish) when the relay stops
        self.cleanups: list[Callable[[], None]] = []
        self._task: asyncio.Task[Any] | None = None
        self._wake = wake  # written on interrupt: a read of stdin waiting in the worker wakes

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """`asyncio.run(coro)` as the command would do it, on the relay's loop (where the warm
        connections live), from the command's worker thread. A Ctrl-C of the client cancels it
        as asyncio.run's SIGINT handler does, and surfaces here as KeyboardInterrupt."""
        import asyncio
        from concurrent.futures import Future

        if self.interrupted:
            coro.close()
            raise KeyboardInterrupt
        done: Future[T] = Future()

        def start() -> None:  # on the loop, in a copy of the worker's context (this request)
            task = self.loop.create_task(coro)
            self._task = task
            if self.interrupted:
                task.cancel()

            def finished(t: asyncio.Task[T]) -> None:
                self._task = None
                if t.cancelled():
                    done.set_exception(asyncio.CancelledError())
                elif (e := t.exception()) is not None:
                    done.set_exception(e)
                else:
                    done.set_result(t.result())

            task.add_done_callback(finished)

        self.loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except asyncio.CancelledError:
            if self.interrupted:
                raise KeyboardInterrupt from None
            raise

    def interrupt(self) -> None:
        """The client's Ctrl-C (on the relay's loop): what the command asked for, else cancel
        what it runs now, as asyncio.run does on SIGINT."""
        self.interrupted = True
        with contextlib.suppress(OSError):
            os.write(self._wake, b"\0")
        if self.on_interrupt is not None:
            self.on_interrupt()
        elif self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        """The relay is stopping: let attempts in flight finish, start nothing new (a router
        the command makes from now on starts stopped)."""
        self.stopping = True
        for router in self.routers:
            router.stop()

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self.cleanups.clear()
        for stream in (self.stdout, self.stderr):
            with contextlib.suppress(Exception):
                stream.flush()


# -- what the rest of clawrelay asks ---------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro), or on the relay's loop for a command running inside the relay."""
    request = current.get()
    if request is None:
        import asyncio

        return asyncio.run(coro)
    return request.run(coro)


def cwd() -> str | None:
    """The working folder of the command when it runs inside the relay (None: the process's)."""
    request = current.get()
    return request.cwd if request is not None else None


def umask() -> int | None:
    """The umask of the command's programs when it runs inside the relay (None: the process's)."""
    request = current.get()
    return request.umask if request is not None else None


def resolve(path: str | os.PathLike[str]) -> str:
    """A path given on the command line, absolute against the command's working folder."""
    path = os.path.expanduser(os.fspath(path))
    base = cwd()
    return os.path.join(base, path) if base is not None else path


def on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Call `callback` on SIGTERM or Ctrl-C: the process's signals, or the client's Ctrl-C."""
    request = current.get()
    if request is None:
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, callback)
        return
    request.on_interrupt = callback
    if request.interrupted:
        callback()


def at_end(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` when the command ends inside the relay (in its own process, the process's
    end does it: nothing to do)."""
    request = current.get()
    if request is not None:
        request.cleanups.append(cleanup)


def track_router(router: Any) -> None:
    request = current.get()
    if request is not None:
        request.routers.append(router)
        if request.stopping:
            router.stop()


def resident() -> Any:
    """The relay's shared connections when this process is a relay, else None."""
    return _resident


# -- the proxies -----------------------------------------------------------------------------


class _Stream:
    """sys.stdin/stdout/stderr in the relay: the current request's stream, else the relay's own."""

    def __init__(self, name: str, own: Any) -> None:
        self._name = name
        self._own = own

    def _target(self) -> Any:
        request = current.get()
        return self._own if request is None else getattr(request, self._name)

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def fileno(self) -> int:
        return int(self._target().fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


class _Environ(MutableMapping[str, str]):
    """os.environ in the relay: the current request's environment, else the relay's own."""

    def __init__(self, own: MutableMapping[str, str]) -> None:
        self._own = own

    def _map(self) -> MutableMapping[str, str]:
        request = current.get()
        return self._own if request is None else request.env

    def __getitem__(self, key: str) -> str:
        return self._map()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._map()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._map()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._map()))

    def __len__(self) -> int:
        return len(self._map())

    def copy(self) -> dict[str, str]:
        return dict(self._map())

    def __repr__(self) -> str:
        return f"environ({dict(self._map())!r})"


def install(shared: Any) -> None:
    """Make this process a relay: per-request stdio and environment, and its shared connections."""
    global _resident
    _resident = shared
    if not isinstance(sys.stdout, _Stream):
        sys.stdin = _Stream("stdin", sys.stdin)
        sys.stdout = _Stream("stdout", sys.stdout)
        sys.stderr = _Stream("stderr", sys.stderr)
    if not isinstance(os.environ, _Environ):
        # not a clearing of the environment (ruff B003): the process's own stays behind the proxy
        os.environ = _Environ(os.environ)  # type: ignore[assignment]  # noqa: B003
