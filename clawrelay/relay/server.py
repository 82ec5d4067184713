"""The relay: `clawrelay serve`.

One process per state dir (an flock on `relay.lock`; a second one refuses). It listens on the
state dir's Unix socket (0600, and each peer's uid checked against its own: another local user
is refused even where file modes would let them connect), and runs each accepted command in a
worker thread with the client's streams, environment and folder (`context`), its coroutines on
this loop, where the warm connections are (`resident`). Meanwhile it drains the outbox as
`outbox flush --watch` does, holding the same watcher lock so `service status` sees a flusher.

Malformed or hostile input on the socket gets an `error` frame and the connection closed: it
never reaches a command and never stops the relay. SIGTERM (or Ctrl-C) stops taking commands,
lets the attempts in flight finish (their routers are told to stop, as a flusher's is), and
exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import io
import logging
import os
import select
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clawrelay import __version__
from clawrelay.errors import ClawrelayError, Reason
from clawrelay.relay import context, protocol
from clawrelay.relay.address import LOCK, short_dir, socket_path
from clawrelay.relay.client import FORWARDED, forwardable, without_root_flag
from clawrelay.relay.resident import Resident, keep_gateway

log = logging.getLogger("clawrelay.relay")

MAX_REQUESTS = 64  # commands at once; past that a client runs its command itself
HANDSHAKE_TIMEOUT = 5.0
MAX_ARGV = 4096
_ERRORS = frozenset({"strict", "surrogateescape", "replace", "backslashreplace", "ignore"})


class RelayRunning(ClawrelayError):
    exit_code = 1


class BadRequest(Exception):
    """A request the relay will not run; its message goes back to the client in an error frame."""


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (None where the OS cannot say)."""
    if hasattr(socket, "SO_PEERCRED"):
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", raw)[1])
    peercred = getattr(socket, "LOCAL_PEERCRED", None)
    if peercred is not None:  # macOS: struct xucred {u_int cr_version; uid_t cr_uid; ...}
        raw = conn.getsockopt(0, peercred, 76)
        return int(struct.unpack_from("=II", raw)[1])
    return None


class _Input(io.RawIOBase):
    """The client's stdin, read so that the client's Ctrl-C (a byte on `wake`) ends the wait."""

    def __init__(self, fd: int, wake: int) -> None:
        self._fd, self._wake = fd, wake

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def readinto(self, buffer: Any) -> int:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        poller.register(self._wake, select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._wake in ready:
                raise KeyboardInterrupt
            if self._fd in ready:
                data = os.read(self._fd, len(buffer))
                buffer[: len(data)] = data
                return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        super().close()


def _stream(spec: Any) -> tuple[str, str]:
    """One of the `streams` of a run: (encoding, errors) a text stream can be made with."""
    if not isinstance(spec, dict):
        raise BadRequest("streams: each of 0, 1, 2 is {encoding, errors}")
    encoding, errors = spec.get("encoding"), spec.get("errors")
    if not isinstance(encoding, str) or not isinstance(errors, str) or errors not in _ERRORS:
        raise BadRequest("streams: an encoding and one of the standard error handlers")
    try:  # a codec that is not a text encoding (rot13, base64, zlib) is refused here too
        io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors)
    except (LookupError, ValueError):
        raise BadRequest(f"streams: {encoding[:40]!r} is not a text encoding") from None
    return encoding, errors


class _ToClient(io.TextIOWrapper):
    """The client's stdout or stderr. A client that went away (killed, its pipe closed) does not
    stop the command it started: the command finishes and journals what happened, and what it
    would have printed is dropped (in its own process the command would have died with it)."""

    gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return super().write(text)
            except OSError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                super().flush()
            except OSError:
                self.gone = True


def _text(fd: int, spec: tuple[str, str]) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=True)
    return _ToClient(raw, encoding=spec[0], errors=spec[1], write_through=True)


def _checked_run(
    frame: dict[str, Any],
) -> tuple[list[str], str, dict[str, str], dict[str, tuple[str, str]], int | None]:
    if frame.get("v") != protocol.VERSION:
        raise BadRequest(f"protocol version {frame.get('v')!r}; this relay speaks {protocol.VERSION}")
    argv, cwd, env, streams = frame.get("argv"), frame.get("cwd"), frame.get("env"), frame.get("streams")
    if not isinstance(argv, list) or len(argv) > MAX_ARGV or not all(isinstance(a, str) for a in argv):
        raise BadRequest("argv: a list of strings")
    if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd:
        raise BadRequest("cwd: an absolute path")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
        for k, v in env.items()
    ):
        raise BadRequest("env: an object of strings")
    if not isinstance(streams, dict) or set(streams) != {"0", "1", "2"}:
        raise BadRequest("streams: 0, 1 and 2")
    if any("\0" in a for a in argv):
        raise BadRequest("argv: no NUL")
    umask = frame.get("umask")
    if umask is not None and (type(umask) is not int or not 0 <= umask <= 0o777):
        raise BadRequest("umask: an integer from 0 to 0o777")
    return argv, cwd, env, {k: _stream(streams[k]) for k in ("0", "1", "2")}, umask


class Relay:
    def __init__(self, home: Path, config: str | None, *, interval: float, probe_timeout: float) -> None:
        self.home = home
        self.config = config
        self.interval = interval
        self.probe_timeout = probe_timeout
        self.resident = Resident(home)
        self.resident.describe = self.stat  # what `status` shows of the relay it runs in
        self.path = socket_path(home)
        self.requests: set[context.Request] = set()
        self._threads: set[threading.Thread] = set()
        self._lock_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._routers: list[Any] = []
        self.on_pass: Callable[[Any], None] | None = None
        self.member: Any = None  # the fleet member (clawrelay.fleet.member), with `fleet:`
        self.report: Callable[[Any], None] | None = None

    # -- the lock and the socket -----------------------------------------------------------

    def claim(self) -> None:
        """Become the relay of this state dir, or fail with who is."""
        fd = os.open(self.home / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.pread(fd, 32, 0).decode().strip() or "?"
            except OSError:
                pid = "?"
            os.close(fd)
            raise RelayRunning(
                f"a relay already runs for {self.home} (pid {pid}); one per state dir",
                reason=Reason.RELAY_RUNNING,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def listen(self) -> socket.socket:
        """Bind the socket (0600): a file left by a relay that died is ours to replace, since we
        hold the lock."""
        if os.path.dirname(self.path) == short_dir():
            os.makedirs(short_dir(), mode=0o700, exist_ok=True)
            st = os.lstat(short_dir())
            if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isdir(short_dir()):
                raise ClawrelayError(
                    f"{short_dir()} is not a private folder of this user", reason=Reason.FORBIDDEN
                )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
        return sock

    # -- running ---------------------------------------------------------------------------

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            for router in self._routers:
                router.stop()
            for request in list(self.requests):
                request.stop()

    async def main(self, ready: Callable[[], None]) -> None:
        from clawrelay.service.state import WatcherLock

        loop = asyncio.get_running_loop()
        self._loop = loop
        listener = self.listen()
        context.install(self.resident)
        from clawrelay.logs import configure

        configure()  # its handler now writes to sys.stderr's proxy: a command's lines reach its client
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        tasks = [loop.create_task(self._accept(listener)), loop.create_task(self._tidy())]
        with WatcherLock(self.home) as watcher:
            watcher.acquire(self.interval)
            graceful = [loop.create_task(self._flush()), loop.create_task(self._fleet())]
            tasks += graceful
            tasks.append(loop.create_task(self._keep()))
            ready()
            await self._stop.wait()
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            for task in tasks:
                if task not in graceful:  # the flusher ends its pass (its router is stopping),
                    task.cancel()  # the fleet member its delivery, then leaves the fleet
            await asyncio.gather(*tasks, return_exceptions=True)
            while self._threads:  # commands in flight finish their attempts
                await asyncio.sleep(0.05)
        await self.resident.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # stopped: another request to stop (an impatient `kill`, a second Ctrl-C) has nothing
            # left to do, and must not kill what remains of the exit (the loop's closing would
            # put the default dispositions back)
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as e:  # out of descriptors, say: clients run here meanwhile; keep accepting
                log.warning("relay: cannot accept a connection: %s", e)
                await asyncio.sleep(0.5)
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="clawrelay-request", daemon=True)
            self._threads.add(thread)
            thread.start()

    async def _tidy(self) -> None:
        while True:
            await asyncio.sleep(30)
            try:
                await self.resident.tidy()
            except Exception:
                log.exception("tidying connections")

    def current_routes(self) -> Any:
        """The relay's own routes (its --config, in its environment), re-read when changed."""
        return self.resident.load(self.config)

    async def _keep(self) -> None:
        """A keeper per gateway of the current routes; started again when the routes change."""
        keepers: dict[tuple[str, str, str | None], asyncio.Task[None]] = {}
        try:
            while True:
                try:
                    routes = await asyncio.to_thread(self.current_routes)
                    wanted = {}
                    for name, gw in routes.config.gateways.items():
                        with contextlib.suppress(ClawrelayError):
                            wanted[(name, gw.url, gw.resolve_token())] = True
                except ClawrelayError as e:
                    log.warning("routes: %s", e)
                    wanted = {}
                for key in set(keepers) - set(wanted):
                    keepers.pop(key).cancel()
                for key in set(wanted) - set(keepers):
                    keepers[key] = asyncio.create_task(keep_gateway(self.resident, *key))
                await asyncio.sleep(max(2.0, min(self.interval, 15.0)))
        finally:
            for task in keepers.values():
                task.cancel()

    async def _flush(self) -> None:
        """`outbox flush --watch`, with the routes of the moment and the relay's connections."""
        from clawrelay.cli.common import open_journal
        from clawrelay.flush import Flusher
        from clawrelay.journal import now_ms
        from clawrelay.router import Router
        from clawrelay.service.state import record_pass

        journal = await asyncio.to_thread(open_journal)
        flusher: Flusher | None = None
        try:
            while not self._stop.is_set():
                started = now_ms()
                try:
                    routes = await asyncio.to_thread(self.current_routes)
                except ClawrelayError as e:
                    log.warning("routes: %s; the outbox waits", e)
                    await self._wait(self.interval)
                    continue
                router = Router(
                    routes,
                    journal,
                    on_attempt=None,
                    gateway_pool=self.resident.gateways,
                    host_carriers=self.resident.carriers_for(routes),
                )
                self._routers = [router]
                if flusher is None:
                    flusher = Flusher(router, probe_timeout=self.probe_timeout)
                else:
                    flusher.router = router
                try:
                    result = await flusher.watch_once()
                except ClawrelayError as e:
                    log.warning("outbox: %s", e)
                    await self._wait(self.interval)
                    continue
                left = sum(n["queued"] for n in journal.waiting().values())
                record_pass(
                    {**result.summary(), "left_queued": left},
                    mode="watch",
                    started_ms=started,
                    home=self.home,
                )
                if self.report is not None and (result.retried or result.errors or result.expired):
                    self.report(result)
                await self._wait(self.interval)
        finally:
            journal.close()

    async def _fleet(self) -> None:
        """The fleet member, when the routes have `fleet:` (read at start: a fleet added or
        changed later takes a restart of the relay)."""
        from clawrelay.cli.common import open_journal
        from clawrelay.fleet.member import Member, node_name
        from clawrelay.router import Router

        try:
            routes = await asyncio.to_thread(self.current_routes)
        except ClawrelayError:
            return
        fleet = routes.config.fleet
        if fleet is None:
            return
        journal = await asyncio.to_thread(open_journal)
        try:
            self.member = Member(
                fleet,
                node_name(fleet, routes),
                journal=journal,
                journals=open_journal,
                routes=self.current_routes,
                router=lambda r, j: Router(r, j, on_attempt=None),
                stopping=self._stop,
                probe_timeout=self.probe_timeout,
            )
            await self.member.run()
        except Exception:
            log.exception("fleet")
        finally:
            journal.close()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    def stat(self) -> dict[str, Any]:
        gateways: dict[str, bool] = {}
        with contextlib.suppress(ClawrelayError):
            routes = self.current_routes()
            gateways = {name: False for name in routes.config.gateways}
        for name, up in self.resident.gateways.connected().items():
            if name in gateways or "://" not in name:
                gateways[name] = gateways.get(name, False) or up
        return {
            "running": True,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.resident.started, 1),
            "socket": self.path,
            "commands": len(self.requests),
            "gateways": gateways,
            "hosts": self.resident.hosts(),
            **({"fleet": self.member.describe()} if self.member is not None else {}),
        }

    # -- one connection, in its own thread -------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            conn.setblocking(True)
            conn.settimeout(HANDSHAKE_TIMEOUT)
            if peer_uid(conn) not in (os.getuid(), None):
                self._error(conn, Reason.FORBIDDEN, "this relay serves its own user only")
                return
            try:
                data, fds, flags, _ = socket.recv_fds(conn, 1 << 16, 3)
                if flags & getattr(socket, "MSG_CTRUNC", 0):
                    raise BadRequest("too many descriptors")
                if not data:
                    return
                frame = protocol.read_frame(conn, data)
                if frame is None:
                    return
                op = frame.get("op")
                if op == "stat":
                    protocol.send_frame(conn, {"op": "stat", **self.stat()})
                    return
                if op != "run":
                    raise BadRequest(f"unknown op {str(op)[:40]!r}")
                argv, cwd, env, streams, umask = _checked_run(frame)
                if fds:
                    raise BadRequest("stdin, stdout and stderr come with `go`, not `run`")
            except (BadRequest, protocol.FrameError) as e:
                self._error(conn, Reason.BAD_REQUEST, str(e))
                return
            why = (
                "stopping"
                if self._stop.is_set()
                else "busy"
                if len(self.requests) >= MAX_REQUESTS
                else "not a command the relay runs"
                if not forwardable(argv)
                # started before an upgrade: the client's code is not the relay's, so the client
                # runs it itself (what the user installed is what runs)
                else f"this relay runs clawrelay {__version__}"
                if frame.get("clawrelay") != __version__
                else None
            )
            if why is not None:
                protocol.send_frame(conn, {"op": "declined", "why": why})
                return
            protocol.send_frame(conn, {"op": "accepted", "pid": os.getpid()})
            # the client's descriptors come with `go`: a relay that never got this far (stopped,
            # too busy) holds nothing of the client's, whose output then ends when it exits
            try:
                data, fds, flags, _ = socket.recv_fds(conn, 4, 3)  # the header, and what it carries
                if not data:
                    return
                if flags & getattr(socket, "MSG_CTRUNC", 0):
                    raise BadRequest("too many descriptors")
                go = protocol.read_frame(conn, data)
                if go is None or go.get("op") != "go":
                    raise BadRequest("after `accepted`, `go`")
                if len(fds) != 3:
                    raise BadRequest("`go` passes stdin, stdout and stderr")
            except (BadRequest, protocol.FrameError) as e:
                self._error(conn, Reason.BAD_REQUEST, str(e))
                return
            out = _text(fds[1], streams["1"])
            fds[1] = -1
            err = _text(fds[2], streams["2"])
            fds[2] = -1
            self._run(conn, argv, cwd, env, umask, streams, fds[0], out, err)
            fds[0] = -1
        except (OSError, protocol.FrameError, ValueError) as e:
            log.debug("relay connection: %s", e)
        except Exception:
            log.exception("relay connection")
        finally:
            for fd in fds:
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            with contextlib.suppress(OSError):
                conn.close()
            self._threads.discard(threading.current_thread())

    def _error(self, conn: socket.socket, reason: str, message: str) -> None:
        with contextlib.suppress(OSError, protocol.FrameError):
            protocol.send_frame(conn, {"op": "error", "reason": str(reason), "message": message[:400]})

    def _run(
        self,
        conn: socket.socket,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        umask: int | None,
        streams: dict[str, tuple[str, str]],
        stdin_fd: int,
        out: io.TextIOWrapper,
        err: io.TextIOWrapper,
    ) -> None:
        assert self._loop is not None
        wake_r, wake_w = os.pipe()
        encoding, errors = streams["0"]  # checked before `accepted`, as 1 and 2 were
        stdin = io.TextIOWrapper(
            io.BufferedReader(_Input(stdin_fd, wake_r)), encoding=encoding, errors=errors
        )
        request = context.Request(
            self._loop, env=env, cwd=cwd, stdin=stdin, stdout=out, stderr=err, wake=wake_w, umask=umask
        )
        self.requests.add(request)
        conn.settimeout(None)
        watcher = threading.Thread(target=self._watch, args=(conn, request), daemon=True)
        watcher.start()
        code = 1
        try:
            code = contextvars.Context().run(self._command, request, argv)
        finally:
            with contextlib.suppress(OSError, protocol.FrameError):
                protocol.send_frame(conn, {"op": "exit", "code": code})
            request.close()
            self.requests.discard(request)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            watcher.join(timeout=1)
            for stream in (stdin, out, err):
                with contextlib.suppress(Exception):
                    stream.close()
            for fd in (wake_r, wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    @staticmethod
    def _command(request: context.Request, argv: list[str]) -> int:
        context.current.set(request)
        try:
            from clawrelay.cli import main

            return main(without_root_flag(argv))
        except BaseException as e:  # a bug: one line to the client, never the relay down
            log.exception("command %s", argv[:2])
            with contextlib.suppress(Exception):
                request.stderr.write(f"clawrelay: internal error in the relay: {e.__class__.__name__}\n")
            return 1

    def _watch(self, conn: socket.socket, request: context.Request) -> None:
        """The client's frames while its command runs: a Ctrl-C; the end of the connection."""
        assert self._loop is not None
        while True:
            try:
                frame = protocol.read_frame(conn)
            except (OSError, protocol.FrameError):
                return
            if frame is None:
                return
            if frame.get("op") == "signal":
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(request.interrupt)


def warm_up() -> None:
    """Build the commands the relay runs and import what they import, before the first client:
    the first command should not pay what the relay exists to pay once."""
    import click

    from clawrelay.cli import ROOT

    ctx = click.Context(ROOT)
    for name in sorted(FORWARDED | {"outbox"}):
        ROOT.get_command(ctx, name)
    for module in ("clawrelay.router", "clawrelay.flush", "clawrelay.status", "clawrelay.remote.exec"):
        __import__(module)
    from clawrelay.transports.registry import specs

    for spec in specs():
        with contextlib.suppress(ImportError):
            spec.implementation()


def check_fleet(fleet: Any) -> None:
    """Before serving: a fleet whose Redis refuses the password (or whose password variable is
    unset) is a configuration error, said at once (exit 2). A Redis that does not answer is only
    the moment's: the relay starts, delivers locally, and joins when it answers."""
    from clawrelay.fleet.connect import FleetUnreachable, connected

    async def ping() -> None:
        async with connected(fleet):
            pass

    try:
        asyncio.run(ping())
    except FleetUnreachable as e:
        log.warning("%s; starting without the fleet, joining when it answers", e.message)


def serve(
    home: Path,
    config: str | None,
    *,
    interval: float,
    probe_timeout: float,
    report: Callable[[Any], None] | None,
    ready: Callable[[str], None],
) -> int:
    relay = Relay(home, config, interval=interval, probe_timeout=probe_timeout)
    relay.report = report
    relay.claim()
    routes = relay.current_routes()  # a broken routes file is the one-line error of `serve` itself
    if routes.config.fleet is not None:
        check_fleet(routes.config.fleet)
    warm_up()
    asyncio.run(relay.main(lambda: ready(relay.path)))
    return 0


__all__ = ["Relay", "RelayRunning", "serve"]
