"""Does a flusher run on this machine? Three small files in the state dir say it, cheaply.

- `flusher.lock`: `outbox flush --watch` holds an flock on it for as long as it runs and writes its
  pid, start time and interval into it. The kernel drops the lock when the process dies, however
  it dies, so a lock that is held is a watcher that is alive.
- `last-pass.json`: every flush pass (a watcher's, a scheduled one, one run by hand) writes when it
  finished and what it did. A pass run by an installed service (its definition sets
  `CLAWRELAY_SERVICE=<kind>`) also writes `last-pass.service.json`.
- `service.json`: what `clawrelay service install` put in place: its kind (systemd, launchd,
  cron), its interval, and where it lives.

A flusher runs when (1) a watcher holds `flusher.lock`, or (2) `service.json` names an installed
service with interval I and a pass run by that service finished less than 2 × I ago. Nothing
here touches the network or imports more than `json` and `fcntl`: `send` asks it after every
message it leaves queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clawrelay.outcome import Delivery
    from clawrelay.probes.check import Check

LOCK = "flusher.lock"
LAST_PASS = "last-pass.json"
LAST_SERVICE_PASS = "last-pass.service.json"
INSTALLED = "service.json"
SERVICE_ENV = "CLAWRELAY_SERVICE"  # set by every service definition: whose pass this is
STALE_AFTER = 2  # a service is running while its last pass is younger than this many intervals
INSTALL_HINT = "clawrelay service install"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _home(home: Path | None) -> Path:
    if home is not None:
        return home
    from clawrelay import paths

    return paths.state_dir()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically, mode 0600: a reader sees the old record or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


# -- the watcher's lock --------------------------------------------------------------------------


class WatcherLock:
    """Held by `outbox flush --watch` while it runs. A second watcher runs without it (two
    flushers are safe); the first one's pid stays the one on record."""

    def __init__(self, home: Path | None = None) -> None:
        self.path = _home(home) / LOCK
        self._fd: int | None = None

    def acquire(self, interval_s: float) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        info = {"pid": os.getpid(), "started_ms": _now_ms(), "interval_s": interval_s}
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the file stays: unlinking it would race the next watcher
            self._fd = None

    def __enter__(self) -> WatcherLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def watcher(home: Path | None = None) -> dict[str, Any] | None:
    """The live watcher's pid, start and interval, or None when no watcher holds the lock."""
    try:
        fd = os.open(_home(home) / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:  # being written right now
                info = {}
            return {k: info.get(k) for k in ("pid", "started_ms", "interval_s")}
        return None
    finally:
        os.close(fd)


# -- passes and the installed service ------------------------------------------------------------


def record_pass(summary: dict[str, Any], *, mode: str, started_ms: int, home: Path | None = None) -> None:
    """What a flush pass did, when it finished; never a reason for the pass itself to fail."""
    record = {"finished_ms": _now_ms(), "started_ms": started_ms, "mode": mode, "pid": os.getpid(), **summary}
    service = os.environ.get(SERVICE_ENV)
    if service:
        record["service"] = service
    with contextlib.suppress(OSError):
        where = _home(home)
        _write(where / LAST_PASS, record)
        if service:
            _write(where / LAST_SERVICE_PASS, record)


def last_pass(home: Path | None = None, *, by_service: bool = False) -> dict[str, Any] | None:
    return _read(_home(home) / (LAST_SERVICE_PASS if by_service else LAST_PASS))


def read_installed(home: Path | None = None) -> dict[str, Any] | None:
    record = _read(_home(home) / INSTALLED)
    return record if record and isinstance(record.get("kind"), str) else None


def save_installed(record: dict[str, Any], home: Path | None = None) -> None:
    _write(_home(home) / INSTALLED, record)


def forget_installed(home: Path | None = None) -> None:
    where = _home(home)
    for name in (INSTALLED, LAST_SERVICE_PASS):
        (where / name).unlink(missing_ok=True)


# -- the verdict ---------------------------------------------------------------------------------


def ago(ms: int, now: int | None = None) -> str:
    s = max(0, ((now or _now_ms()) - ms) / 1000)
    if s < 90:
        return f"{s:.0f}s ago"
    if s < 90 * 60:
        return f"{s / 60:.0f} min ago"
    if s < 36 * 3600:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} days ago"


def every(seconds: float) -> str:
    from clawrelay.config.durations import format_duration

    return format_duration(seconds)


@dataclass
class FlusherState:
    running: bool
    how: str  # one line: what runs, or why nothing does
    watcher: dict[str, Any] | None
    installed: dict[str, Any] | None
    last_pass: dict[str, Any] | None
    last_service_pass: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "flusher_running": self.running,
            "how": self.how,
            "watcher": self.watcher,
            "installed": self.installed,
            "last_pass": self.last_pass,
            "last_service_pass": self.last_service_pass,
        }


def look(home: Path | None = None) -> FlusherState:
    """Whether a flusher runs, and how (or why not), from the state dir alone."""
    where = _home(home)
    now = _now_ms()
    w, record = watcher(where), read_installed(where)
    last, mine = last_pass(where), last_pass(where, by_service=True)
    if mine is not None and record is not None and mine.get("service") != record["kind"]:
        mine = None  # a pass of a service installed before this one
    if w is not None:
        interval = f", every {every(w['interval_s'])}" if isinstance(w.get("interval_s"), int | float) else ""
        return FlusherState(True, f"a watcher runs (pid {w.get('pid')}{interval})", w, record, last, mine)
    if record is None:
        return FlusherState(
            False, "no flusher runs: no watcher, and no service installed", None, None, last, mine
        )
    kind, interval_s = record["kind"], float(record.get("interval_s") or 0)
    finished = mine.get("finished_ms") if mine else None
    if isinstance(finished, int) and interval_s > 0 and now - finished < STALE_AFTER * interval_s * 1000:
        how = f"the {kind} service ran a pass {ago(finished, now)} (every {every(interval_s)})"
        return FlusherState(True, how, None, record, last, mine)
    since = "it has run no pass yet"
    if isinstance(finished, int):
        since = f"its last pass ended {ago(finished, now)}"
    how = f"no flusher runs: the {kind} service is installed (every {every(interval_s)}) but {since}"
    return FlusherState(False, how, None, record, last, mine)


def flusher_running(home: Path | None = None) -> bool:
    """Will something on this machine retry what waits in the outbox? Never raises."""
    try:
        return look(home).running
    except Exception:  # a state dir that cannot be read: nothing can be promised
        return False


# -- what `send` and `doctor` say ----------------------------------------------------------------


def auto_retry_json(deliveries: list[Delivery], docs: list[dict[str, Any]]) -> None:
    """`send --json`: each queued message's object gets `auto_retry`, true when a flusher runs."""
    queued = [i for i, d in enumerate(deliveries) if d.queued]
    if queued:
        running = flusher_running()
        for i in queued:
            docs[i]["auto_retry"] = running


def no_flusher_line(deliveries: list[Delivery]) -> str | None:
    """`send`: one line when what it left queued waits for a flush nobody runs."""
    n = sum(1 for d in deliveries if d.queued)
    if not n or flusher_running():
        return None
    them = "it" if n == 1 else "them"
    return f"nothing retries {them} on this machine: no flusher runs ({INSTALL_HINT} sets one up)"


def outbox_depth(home: Path | None = None) -> dict[str, int]:
    """{"queued": n, "ambiguous": m} in this state dir's outbox (no journal yet: nothing waits)."""
    where = _home(home)
    if not (where / "journal.db").exists():
        return {"queued": 0, "ambiguous": 0}
    from clawrelay.journal import Journal

    journal = Journal(where)
    try:
        waiting = journal.waiting().values()
    finally:
        journal.close()
    return {k: sum(n[k] for n in waiting) for k in ("queued", "ambiguous")}


def flusher_check() -> Check:
    """`doctor`'s `flusher` line: ok when one runs; FAIL when messages wait and none does."""
    from clawrelay.errors import ClawrelayError
    from clawrelay.probes.check import Check
    from clawrelay.reasons import Reason

    try:
        state, queued = look(), outbox_depth()["queued"]
    except ClawrelayError as e:
        return Check("flusher", False, e.message, reason=e.reason)
    except Exception as e:
        return Check("flusher", False, f"{e.__class__.__name__}: {e}", reason=Reason.INTERNAL_ERROR)
    waiting = f"{queued} queued in the outbox" if queued else "the outbox is empty"
    if state.running:
        return Check("flusher", True, f"{state.how}; {waiting}")
    if queued:
        return Check(
            "flusher",
            False,
            f"{waiting} and {state.how}: nothing retries them",
            reason=Reason.NO_FLUSHER,
            fix=INSTALL_HINT,
        )
    return Check(
        "flusher",
        True,
        f"{waiting}; {state.how}: a message left queued would wait for a flush ({INSTALL_HINT})",
    )
