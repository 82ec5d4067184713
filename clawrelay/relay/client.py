"""The forwarding side of a command: hand the command line to the relay when one answers.

Standard library only, and nothing of clawrelay's but `address`, `protocol` and `cli.argv`: this
runs before the command knows whether it will need typer, the routes or websockets at all. The
command's stdin, stdout and stderr go to the relay as descriptors (SCM_RIGHTS, as chg and
OpenSSH's ControlMaster pass them), so its output reaches the terminal or pipe directly, in the
same order, with the same isatty; what remains here is the exit status and Ctrl-C.

When is a command forwarded: its word is one of FORWARDED (not `--help`, not `outbox flush
--watch`, which is a relay of its own), CLAWRELAY_RELAY is not `off`, `--no-relay` is not among
the root options, and a relay accepts it within HELLO_TIMEOUT. Anything else (no socket, a stale
one, a relay that declines or is too busy to say) and the command runs in this process, as if no
relay existed. Once the relay has accepted and been told `go`, the command is its: a relay that
vanishes then leaves the outcome unknown (exit 4, `relay_lost`), never run a second time here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

from clawrelay import __version__
from clawrelay.relay import protocol
from clawrelay.relay.address import socket_path

TYPE_CHECKING = False  # typing is not imported: this runs before every forwarded command
if TYPE_CHECKING:
    from typing import Any

RELAY_ENV = "CLAWRELAY_RELAY"  # `off`: every command runs in its own process
NO_RELAY = "--no-relay"
FORWARDED = frozenset({"send", "event", "exec", "call", "nodes", "status"})
FORWARDED_OUTBOX = frozenset({"retry", "flush"})
HELLO_TIMEOUT = 2.0  # a relay that does not accept within this is treated as absent
_ROOT_TAKES_VALUE = ("-c", "--config")  # as cli/argv.py reads them: importing it would load click
_HELP = ("-h", "--help")
RELAY_LOST = 4  # the exit code of an outcome nobody can know: the same as an ambiguous send


def command_word(argv: list[str]) -> tuple[int, bool]:
    """Where the command's word is in argv (len(argv) when none) and whether `--no-relay` was
    among the root options before it."""
    i, off = 0, False
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == NO_RELAY:
            off = True
        i += 2 if argv[i] in _ROOT_TAKES_VALUE else 1
    return i, off


def forwardable(argv: list[str]) -> bool:
    """Whether the relay may run this command line (the relay asks the same question)."""
    i, off = command_word(argv)
    if off or i >= len(argv) or argv[i] not in FORWARDED | {"outbox"}:
        return False
    rest = argv[i + 1 :]
    before_dashes = rest[: rest.index("--")] if "--" in rest else rest
    if any(w in _HELP for w in argv[:i] + before_dashes):
        return False
    if argv[i] == "outbox":
        sub = before_dashes[0] if before_dashes else None
        return sub in FORWARDED_OUTBOX and "--watch" not in before_dashes
    return True


def without_root_flag(argv: list[str]) -> list[str]:
    """argv without the root's `--no-relay` (click does not know it)."""
    i, _ = command_word(argv)
    return [w for w in argv[:i] if w != NO_RELAY] + argv[i:]


def _streams() -> dict[str, Any] | None:
    """What the relay needs to write and read text as this process would; None when one of the
    three descriptors is closed (nothing to pass: run here)."""
    out: dict[str, Any] = {}
    for fd, stream in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
        try:
            os.fstat(fd)
        except OSError:
            return None
        out[str(fd)] = {
            "encoding": getattr(stream, "encoding", None) or "utf-8",
            "errors": getattr(stream, "errors", None) or "strict",
        }
    return out


def forward(argv: list[str]) -> int | None:
    """Run argv in the relay: its exit code, or None when this process should run it itself."""
    if os.environ.get(RELAY_ENV, "").strip().lower() in ("off", "0", "no", "false") or not forwardable(argv):
        return None
    streams = _streams()
    if streams is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HELLO_TIMEOUT)
        try:
            sock.connect(socket_path())
        except OSError:  # no relay, a stale socket, or not ours to use: run here, at once
            return None
        try:
            cwd = os.getcwd()
        except OSError:
            return None
        request = {
            "op": "run",
            "v": protocol.VERSION,
            "argv": argv,
            "cwd": cwd,
            "env": dict(os.environ),
            "streams": streams,
            "umask": _umask(),
            "clawrelay": __version__,  # a relay running other code (not restarted since an upgrade) declines
        }
        try:  # the descriptors wait for `accepted`: one that never comes must not hold them
            protocol.send_frame(sock, request)
            answer = protocol.read_frame(sock)
        except (OSError, protocol.FrameError):
            return None
        if answer is None or answer.get("op") != "accepted":
            return None
        previous = _pass_signals(sock)  # from here on a Ctrl-C is the command's, in the relay
        try:
            socket.send_fds(sock, [protocol.pack({"op": "go"})], [0, 1, 2])
        except OSError:  # it is gone before it was told to start: nothing ran, run it here
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            return None
        return _follow(sock, argv, answer.get("pid"))
    finally:
        sock.close()


def _umask() -> int:
    mask = os.umask(0o022)  # (read by setting it: this process has one thread here)
    os.umask(mask)
    return mask


def _pass_signals(sock: socket.socket) -> dict[int, Any]:
    """Ctrl-C (and SIGTERM, SIGHUP) become an interrupt of the command running in the relay; the
    handlers they had, to put back."""

    def interrupt(signum: int, frame: object) -> None:
        try:
            protocol.send_frame(sock, {"op": "signal", "sig": "INT"})
        except OSError:  # the relay is gone: the next read says so
            return

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def _follow(sock: socket.socket, argv: list[str], pid: object) -> int:
    """Wait for the command's exit status."""
    sock.settimeout(None)
    while True:
        try:
            frame = protocol.read_frame(sock)
        except InterruptedError:
            continue
        except (OSError, protocol.FrameError):
            frame = None
        if frame is None:
            return _lost(argv, pid)
        if frame.get("op") == "exit" and isinstance(frame.get("code"), int):
            return int(frame["code"])


def _lost(argv: list[str], pid: object) -> int:
    """The relay went away during the command: what it did is not known here, so say that."""
    message = (
        f"the relay (pid {pid}) stopped while running this command; its outcome is unknown "
        "(`clawrelay log` shows what the journal knows once the relay or the next command has "
        "settled it)"
    )
    from clawrelay.reasons import Reason

    i, _ = command_word(argv)
    if "--json" in argv[i:]:
        doc = {"error": {"reason": str(Reason.RELAY_LOST), "message": message}}
        print(json.dumps(doc, ensure_ascii=False), flush=True)
    print(f"clawrelay: {message}", file=sys.stderr, flush=True)
    return RELAY_LOST


def ask_stat(home: str | None = None, timeout: float = 1.0) -> dict[str, Any]:
    """What `status` shows of the relay: its `stat` (running, pid, uptime, gateways and hosts
    connected), or `{"running": false}` when none answers."""
    context = sys.modules.get("clawrelay.relay.context")  # loaded in a relay: asked inside it?
    resident = context.resident() if context is not None else None
    if resident is not None and resident.describe is not None:
        return dict(resident.describe())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path(home))
        protocol.send_frame(sock, {"op": "stat"})
        frame = protocol.read_frame(sock)
    except (OSError, protocol.FrameError):
        return {"running": False}
    finally:
        sock.close()
    if frame is None or frame.get("op") != "stat":
        return {"running": False}
    frame.pop("op")
    return frame
