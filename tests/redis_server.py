"""A real Redis server on a free loopback port, for the fleet's tests.

Its own redis.conf, password and data folder in one folder; `redis-server <conf>` in its own
process group, stopped by PID. The append-only file is on and fsynced at every write, so what a
test wrote survives `restart()` (a clean SIGTERM shutdown) and even `kill()` (SIGKILL): the
restarted server is on the same port, with the same password and data folder.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from peer import ROOT, _stop_group, free_port


@functools.cache
def redis_bin() -> str:
    """The path of redis-server, installing Debian's package the first time."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-redis.sh")], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"install-redis.sh failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def _quoted(value: str | Path) -> str:
    """A redis.conf argument: double quotes, backslash escapes."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _command(*args: str) -> bytes:
    """One command in RESP, as an array of bulk strings."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def ping(host: str, port: int, password: str, timeout: float = 1.0) -> bool:
    """AUTH then PING over a raw socket: True when the server answers +OK and +PONG (not while
    it is still loading its data, nor with a wrong password)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(_command("AUTH", password) + _command("PING"))
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply == b"+OK\r\n+PONG\r\n"


def _render(reply: Any) -> str:
    """A raw reply as `redis-cli --raw` prints it: nil is empty, an array one element a line."""
    if reply is None:
        return ""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, list | tuple):
        return "\n".join(_render(r) for r in reply)
    return str(reply)


class RedisServer:
    def __init__(self, folder: Path, password: str | None = None) -> None:
        self.dir = folder
        self.port = free_port()
        self.host = "127.0.0.1"
        self.password = password if password is not None else secrets.token_hex(16)
        self.conf = folder / "redis.conf"
        self.log = folder / "redis.log"
        self.binary: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self, binary: str, timeout: float = 20.0) -> RedisServer:
        """Write redis.conf and run the server; return once it answers PING with the password."""
        assert self.proc is None, "already running"
        self.binary = binary
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "\n".join(
                [
                    f"bind {self.host}",
                    f"port {self.port}",
                    "protected-mode yes",
                    f"requirepass {_quoted(self.password)}",
                    "appendonly yes",
                    "appendfsync always",
                    f"dir {_quoted(self.dir)}",
                    "dbfilename dump.rdb",
                    'save ""',
                    "daemonize no",
                    f"logfile {_quoted(self.log)}",
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            [binary, str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"redis-server exited {code}: {log[-3000:]}")
            if ping(self.host, self.port, self.password):
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not answer PING within {timeout} s")

    def stop(self) -> None:
        """SIGTERM to its process group (a clean shutdown, the AOF flushed), reaped by PID."""
        if self.proc is not None:
            _stop_group(self.proc)
            self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        """SIGKILL to its process group: a crash, no shutdown work. Reaped by PID."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def restart(self, timeout: float = 20.0) -> RedisServer:
        """stop() then start() again: the same port, password and data folder."""
        assert self.binary is not None, "never started"
        self.stop()
        return self.start(self.binary, timeout)

    def client(self, **options: Any) -> Any:
        """A redis-py sync client (`redis.Redis`) of this server, with its password unless
        `password=` says otherwise (a wrong one, or None). No retries unless `retry=` is given:
        redis-py's default retries a refused connection or password 3 times, ~8 s."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options = {"password": self.password, "retry": Retry(NoBackoff(), 0), **options}
        return redis.Redis(host=self.host, port=self.port, db=0, **options)

    def cli(self, *args: str) -> str:
        """One command through redis-py, its raw reply as `redis-cli --raw` prints it (no reply
        callbacks: `cli("SET", "k", "v")` is "OK"). An error reply raises redis.ResponseError."""
        with self.client(decode_responses=True) as r:
            r.response_callbacks.clear()
            return _render(r.execute_command(*args))
