"""The flusher as a systemd user unit: a watcher (`outbox flush --watch`) that the user's systemd
manager starts at login and restarts when it fails. Most containers have no user manager
("Failed to connect to bus"), which is why detection asks it instead of looking for `systemctl`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawrelay import paths
from clawrelay.errors import ClawrelayError, Reason
from clawrelay.service import state, units
from clawrelay.service.host import Say, ran, run, write_file

if TYPE_CHECKING:
    from clawrelay.service.plan import Plan


def unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / units.UNIT


def env_file() -> Path:
    return paths.user_config_file().parent / "env"


def available() -> bool:
    """A systemd user manager answers."""
    if shutil.which("systemctl") is None:
        return False
    try:
        return run(["systemctl", "--user", "show-environment"], check=False, timeout=10).returncode == 0
    except ClawrelayError:
        return False


def linger_note() -> str | None:
    """systemd stops a user's services at logout unless lingering is on for them."""
    import pwd

    if shutil.which("loginctl") is None:
        return None
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        p = run(["loginctl", "show-user", user, "--property=Linger", "--value"], check=False, timeout=10)
    except ClawrelayError:
        return None
    if p.returncode == 0 and p.stdout.strip() == "no":
        return (
            f"linger is off for {user}: the flusher stops when you log out; "
            f"`loginctl enable-linger {user}` keeps it running"
        )
    return None


def require() -> None:
    if not available():
        raise ClawrelayError(
            "no systemd user manager answers here (`systemctl --user` cannot connect): "
            "use --kind cron, or install it in a login session",
            reason=Reason.NOT_SUPPORTED,
        )


def fill(p: Plan, *, gateway: str | None, before: dict[str, Any] | None) -> None:
    p.files.append((unit_path(), units.systemd_unit(p.argv, p.env, env_file()).encode()))
    p.commands += [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", units.UNIT],
    ]


def install(p: Plan, record: dict[str, Any], say: Say) -> None:
    path, content = p.files[0]
    changed = write_file(path, content, say)
    record["path"] = str(path)
    state.save_installed(record)  # on record before the supervisor is asked: uninstall can undo it
    for argv in p.commands:
        ran(argv, say)
    if changed == "replaced":  # a running watcher keeps its old command line until restarted
        ran(["systemctl", "--user", "restart", units.UNIT], say)
    note = linger_note()
    if note:
        p.notes.append(note)


def active(record: dict[str, Any], config: str | None, timeout: float) -> tuple[bool | None, str]:
    p = run(["systemctl", "--user", "is-active", units.UNIT], check=False, timeout=timeout + 5)
    said = p.stdout.strip() or p.stderr.strip()
    return said == "active", f"systemctl: {units.UNIT} {said}"


def removal(record: dict[str, Any]) -> str:
    return (
        f"run systemctl --user disable --now {units.UNIT}, remove {_installed_path(record)}, "
        "run systemctl --user daemon-reload"
    )


def remove(record: dict[str, Any], config: str | None, say: Say) -> None:
    path = _installed_path(record)
    manager = available()
    if manager:
        ran(["systemctl", "--user", "disable", "--now", units.UNIT], say)
    path.unlink(missing_ok=True)
    say(f"removed {path}")
    if manager:
        ran(["systemctl", "--user", "daemon-reload"], say)
    else:  # nothing could be running it: the file was all there was
        say("no systemd user manager answers here: nothing to stop")


def _installed_path(record: dict[str, Any]) -> Path:
    return Path(record.get("path") or unit_path())
