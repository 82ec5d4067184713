"""The flusher as a launchd agent (macOS): a watcher (`outbox flush --watch`) in the user's GUI
domain, loaded at login and kept alive while it fails. launchd reads a plist only when it is
bootstrapped, so a changed plist means bootout and bootstrap again."""

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


def plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{units.LABEL}.plist"


def _domain() -> str:
    return f"gui/{os.getuid()}"


def _service() -> str:
    return f"{_domain()}/{units.LABEL}"


def _is_loaded() -> bool:
    return run(["launchctl", "print", _service()], check=False).returncode == 0


def require() -> None:
    if shutil.which("launchctl") is None:
        raise ClawrelayError(
            "launchctl is not on PATH: launchd is macOS's; use --kind systemd or cron",
            reason=Reason.NOT_SUPPORTED,
        )


def fill(p: Plan, *, gateway: str | None, before: dict[str, Any] | None) -> None:
    p.files.append((plist_path(), units.launchd_plist(p.argv, p.env, paths.state_dir() / "flush.log")))
    p.commands += [
        ["launchctl", "enable", _service()],
        ["launchctl", "bootstrap", _domain(), str(plist_path())],
    ]


def install(p: Plan, record: dict[str, Any], say: Say) -> None:
    path, content = p.files[0]
    changed = write_file(path, content, say)
    record["path"] = str(path)
    state.save_installed(record)  # on record before the supervisor is asked: uninstall can undo it
    loaded = _is_loaded()
    if loaded and changed == "unchanged":
        say(f"{units.LABEL}: loaded already")
        return
    steps = ([["launchctl", "bootout", _service()]] if loaded else []) + [
        ["launchctl", "enable", _service()],
        ["launchctl", "bootstrap", _domain(), str(path)],
    ]
    for argv in steps:
        ran(argv, say)


def active(record: dict[str, Any], config: str | None, timeout: float) -> tuple[bool | None, str]:
    p = run(["launchctl", "print", _service()], check=False, timeout=timeout + 5)
    if p.returncode != 0:
        return False, f"launchctl: {units.LABEL} is not loaded"
    fields = dict(line.strip().split(" = ", 1) for line in p.stdout.splitlines() if " = " in line)
    running = fields.get("state") == "running"
    pid = f", pid {fields['pid']}" if "pid" in fields else ""
    return running, f"launchctl: {units.LABEL} {fields.get('state', 'loaded')}{pid}"


def removal(record: dict[str, Any]) -> str:
    return f"run launchctl bootout {_service()}, remove {_installed_path(record)}"


def remove(record: dict[str, Any], config: str | None, say: Say) -> None:
    path = _installed_path(record)
    if _is_loaded():
        ran(["launchctl", "bootout", _service()], say)
    path.unlink(missing_ok=True)
    say(f"removed {path}")


def _installed_path(record: dict[str, Any]) -> Path:
    return Path(record.get("path") or plist_path())
