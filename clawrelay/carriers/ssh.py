"""The ssh carrier: asyncssh, with OpenSSH's own rules for trust.

Host keys are checked against known_hosts (the route's file, else ~/.ssh/known_hosts); an unknown
key is refused with the `ssh-keyscan` command that would add it, never accepted silently.
~/.ssh/config is honoured (host aliases, ports, users, keys), as `ssh` would. The remote side
always parses a command line through the user's shell, so every argument is quoted with
shlex.join, never concatenated, and the command runs under `timeout -s KILL`, which ends its whole
process group at the limit: a cut command leaves nothing running behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clawrelay.carriers.base import GRACE_S, ask_home
from clawrelay.carriers.proxy import wrap
from clawrelay.carriers.result import TIMEOUT_EXIT, RunResult
from clawrelay.config.model import SshRef
from clawrelay.errors import ConfigError, Reason, TransportError

SIGKILL_EXIT = 128 + 9


def _where(ref: SshRef) -> str:
    user = f"{ref.user}@" if ref.user else ""
    return f"{user}{ref.host}" + (f":{ref.port}" if ref.port else "")


def ssh_command(ref: SshRef, *argv: str) -> str:
    """The OpenSSH command line that goes where this carrier goes: run it to see why it does not."""
    words = ["ssh", *(["-p", str(ref.port)] if ref.port else [])]
    if ref.key:
        words += ["-i", remote_path(ref.key)]
    if ref.known_hosts:
        words += ["-o", "UserKnownHostsFile=" + remote_path(ref.known_hosts)]
    target = f"{ref.user}@{ref.host}" if ref.user else ref.host
    return " ".join([*words, shlex.quote(target), *map(shlex.quote, argv)])


def keyscan_command(ref: SshRef) -> str:
    """What adds this host's key to the known_hosts file the carrier checks."""
    port = f"-p {ref.port} " if ref.port else ""
    return f"ssh-keyscan {port}{ref.host} >> {ref.known_hosts or '~/.ssh/known_hosts'}"


def remote_path(path: str) -> str:
    """A path for the remote shell: quoted, but `~/` left for the shell to expand."""
    if path == "~":
        return "~"
    if path.startswith("~/"):
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


def command_line(argv: Sequence[str], *, timeout: float, cwd: str | None, strip_proxy: bool) -> str:
    """The one line the remote shell parses: cd, the kill timer, the proxy-free env, the argv."""
    line = shlex.join(["timeout", "-s", "KILL", f"{max(timeout, 0.1):.1f}", *wrap(argv, strip=strip_proxy)])
    return f"cd -- {remote_path(cwd)} && exec {line}" if cwd else f"exec {line}"


# Constant; the destination arrives as $1. Written private, and whole or not at all.
PUT_SCRIPT = r"""
umask 077
cat > "$1.part" && mv -f "$1.part" "$1" || { rm -f "$1.part"; exit 74; }
"""


class SshCarrier:
    name = "ssh"

    def __init__(self, ref: SshRef, *, strip_proxy: bool = True, connect_timeout: float = 10.0) -> None:
        self.ref = ref
        self.strip_proxy = strip_proxy
        self.connect_timeout = connect_timeout
        self.label = f"ssh {_where(ref)}"
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._home: str | None = None
        self._used = time.monotonic()

    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close_if_idle(self, idle: float, now: float) -> None:
        """Close the connection when nothing used it for `idle` seconds and no channel is open
        (a relay keeps carriers for many commands: an idle host should not hold a session)."""
        conn = self._conn
        if conn is None or now - self._used < idle or getattr(conn, "_channels", None):
            return
        await self.aclose()

    async def _connection(self, timeout: float) -> Any:
        self._used = time.monotonic()
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._conn = await self._connect(timeout)
            return self._conn

    async def _connect(self, timeout: float) -> Any:
        import asyncssh

        ref = self.ref
        opts: dict[str, Any] = {"connect_timeout": max(0.1, min(self.connect_timeout, timeout))}
        if ref.port:
            opts["port"] = ref.port
        if ref.user:
            opts["username"] = ref.user
        if ref.key:
            opts["client_keys"] = [str(Path(ref.key).expanduser())]
        if ref.known_hosts:
            opts["known_hosts"] = str(Path(ref.known_hosts).expanduser())
        where = _where(ref)
        try:
            async with asyncio.timeout(max(0.1, min(self.connect_timeout, timeout)) + 1):
                return await asyncssh.connect(ref.host, **opts)
        except asyncssh.HostKeyNotVerifiable as e:
            known = ref.known_hosts or "~/.ssh/known_hosts"
            raise TransportError(
                f"ssh {where}: the host key is not in {known}; check it is really that host, then add it: "
                f"{keyscan_command(ref)}",
                reason=Reason.HOST_KEY_UNKNOWN,
                fix=keyscan_command(ref),
            ) from e
        except asyncssh.PermissionDenied as e:
            raise TransportError(
                f"ssh {where}: permission denied (key not accepted; check `key:` and the "
                "remote authorized_keys)",
                reason=Reason.AUTH,
            ) from e
        except TimeoutError as e:
            raise TransportError(
                f"ssh {where}: no connection within {opts['connect_timeout']:g}s",
                reason=Reason.UNREACHABLE,
                retryable=True,
            ) from e
        except ConnectionRefusedError as e:
            raise TransportError(
                f"ssh {where}: connection refused", reason=Reason.CONNECTION_REFUSED, retryable=True
            ) from e
        except FileNotFoundError as e:  # a key or known_hosts file named in routes.yaml, not the network
            raise ConfigError(f"ssh {where}: {e.filename or e}: no such file (its key or known_hosts)") from e
        except socket.gaierror as e:
            raise TransportError(
                f"ssh {where}: the name {ref.host} does not resolve here ({e.strerror or e})",
                reason=Reason.UNREACHABLE,
                retryable=True,
            ) from e
        except OSError as e:
            raise TransportError(
                f"ssh {where}: {e.strerror or e}", reason=Reason.UNREACHABLE, retryable=True
            ) from e
        except asyncssh.Error as e:
            raise TransportError(f"ssh {where}: {e.reason}", reason=Reason.SSH_ERROR, retryable=True) from e

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        import asyncssh

        t0 = time.monotonic()
        conn = await self._connection(timeout)
        left = max(0.1, timeout - (time.monotonic() - t0))
        line = command_line(argv, timeout=left, cwd=cwd, strip_proxy=self.strip_proxy)
        try:
            proc = await conn.create_process(line, encoding=None)
        except (asyncssh.Error, OSError) as e:
            raise TransportError(
                f"{self.label}: could not start the command: {e}",
                reason=Reason.CONNECTION_LOST,
                retryable=True,
            ) from e
        if on_spawn is not None:
            on_spawn()
        try:
            if stdin is not None:
                proc.stdin.write(stdin)
            proc.stdin.write_eof()
            done = await asyncio.wait_for(proc.wait(check=False), left + GRACE_S)
        except TimeoutError:
            proc.close()  # the remote `timeout` ends the command; this frees the channel
            return RunResult(
                TIMEOUT_EXIT,
                True,
                b"",
                b"no answer from the host after the time limit",
                int((time.monotonic() - t0) * 1000),
            )
        except (asyncssh.Error, OSError) as e:
            raise TransportError(
                f"{self.label}: connection lost while the command ran", reason=Reason.CONNECTION_LOST
            ) from e
        except BaseException:
            proc.close()
            raise
        elapsed = int((time.monotonic() - t0) * 1000)
        if done.returncode is None:  # no exit status or signal: the session died under the command
            raise TransportError(
                f"{self.label}: connection lost while the command ran", reason=Reason.CONNECTION_LOST
            )
        code = done.returncode
        killed = code in (-9, SIGKILL_EXIT)
        if killed and elapsed >= int(left * 1000) - 100:
            return RunResult(TIMEOUT_EXIT, True, done.stdout or b"", done.stderr or b"", elapsed)
        if code < 0:
            code = 128 - code
        return RunResult(code, False, done.stdout or b"", done.stderr or b"", elapsed)

    async def home(self) -> str:
        if self._home is None:
            self._home = await ask_home(self)
        return self._home

    async def put(self, local: Path, remote: str, *, timeout: float) -> None:
        """One file to the host (git bundles for `sync`): over SFTP, or, where the server has no
        sftp subsystem (minimal and hardened hosts), through `cat` on the command channel."""
        import asyncssh

        end = time.monotonic() + timeout
        conn = await self._connection(timeout)
        try:
            async with asyncio.timeout(timeout), conn.start_sftp_client() as sftp:
                await sftp.put(str(local), remote)
            return
        except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as e:
            why = str(e) or e.__class__.__name__
        except (asyncssh.Error, OSError) as e:
            raise TransportError(
                f"{self.label}: copying {local.name} failed: {e}", reason=Reason.SSH_ERROR
            ) from e
        res = await self.run(
            ["sh", "-c", PUT_SCRIPT, "clawrelay-put", remote],
            timeout=max(1.0, end - time.monotonic()),
            stdin=local.read_bytes(),
        )
        if res.timed_out or res.exit_code != 0:
            raise TransportError(
                f"{self.label}: no SFTP ({why}), and writing {remote} with cat failed: "
                f"{res.stderr_tail() or f'exit {res.exit_code}'}",
                reason=Reason.SSH_ERROR,
            )

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
