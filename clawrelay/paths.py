"""Where clawrelay keeps its state and looks for its config.

Written out rather than taken from platformdirs: that package costs ~50 ms of import on a slow
host for a dozen lines of rules, and every clawrelay invocation needs them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "clawrelay"


def _home() -> Path:
    return Path.home()


def state_dir() -> Path:
    """`$CLAWRELAY_HOME`, else the platform's user state dir. Created 0700 on first use. A
    relative one is the command's folder's (the client's, for a command run inside a relay)."""
    from clawrelay.relay.context import resolve

    env = os.environ.get("CLAWRELAY_HOME")
    if env:
        path = Path(resolve(env))
    elif sys.platform == "darwin":
        path = _home() / "Library" / "Application Support" / APP
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(_home() / ".local" / "state")
        path = Path(resolve(base)) / APP
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        from clawrelay.errors import StateError

        raise StateError(
            f"cannot use {path} as clawrelay's state dir: {e.strerror or e} "
            "(set CLAWRELAY_HOME to a writable folder)"
        ) from None
    return path


def user_config_file() -> Path:
    from clawrelay.relay.context import resolve

    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP / "routes.yaml"
    base = os.environ.get("XDG_CONFIG_HOME") or str(_home() / ".config")
    return Path(resolve(base)) / APP / "routes.yaml"


def this_program() -> list[str]:
    """The absolute argv that starts the clawrelay running now, for a process that has neither our
    PATH nor our working folder (a gateway's exec, a supervisor): its console script, else this
    Python with `-m clawrelay`."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "clawrelay" and script.is_file() and os.access(script, os.X_OK):
        return [os.path.abspath(script)]
    return [os.path.abspath(sys.executable), "-m", "clawrelay"]
