"""Where a state dir's relay listens. Standard library only: the forwarding client reads it
before it imports anything of clawrelay's.

The socket is `<state dir>/relay.sock`. A Unix socket's path is limited to 107 bytes, and a
state dir can be longer (a test's temporary folder, a deep $HOME): then the socket lives in
`/tmp/clawrelay-<uid>/` (0700) under a name derived from the state dir, the same for client and
relay.
"""

from __future__ import annotations

import os
import sys

SOCKET = "relay.sock"
LOCK = "relay.lock"
MAX_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin


def state_dir() -> str:
    """The state dir `clawrelay.paths.state_dir` uses, without creating it."""
    env = os.environ.get("CLAWRELAY_HOME")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "clawrelay")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    return os.path.abspath(os.path.join(base, "clawrelay"))


def socket_path(home: str | os.PathLike[str] | None = None) -> str:
    """The relay socket of `home` (default: this process's state dir)."""
    home = os.path.abspath(os.fspath(home)) if home is not None else state_dir()
    path = os.path.join(home, SOCKET)
    if len(os.fsencode(path)) <= MAX_PATH:
        return path
    import hashlib

    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:24]
    return os.path.join(short_dir(), f"{digest}.sock")


def short_dir() -> str:
    return os.path.join("/tmp", f"clawrelay-{os.getuid()}")
