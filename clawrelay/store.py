"""The journal's SQLite file: created whole, migrated once, and every failure of it one clear error.

Why a module of its own: a journal that cannot be used must stop a command before anything is
sent, with one line that says what is wrong (the disk is full, the file is damaged, the folder is
not writable), never a traceback halfway through a send. So every statement goes through `Db`,
which turns `sqlite3.Error` into `StateError` (exit 2) with a stable reason.

A new journal is built in a temporary file and renamed into place under an flock, so a journal
file that exists but is empty was not being created by another process: its history was lost
(truncated, or replaced by an empty file), and the caller is told so instead of silently
starting over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clawrelay.errors import Reason, StateError

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  sender TEXT NOT NULL,
  target TEXT NOT NULL,
  body TEXT NOT NULL,
  hops INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  via TEXT,
  reply TEXT,
  runs INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL,
  next_attempt_ms INTEGER,
  expires_ms INTEGER NOT NULL,
  batch TEXT,
  batch_to TEXT,
  only_via TEXT
);
CREATE INDEX IF NOT EXISTS messages_status ON messages(status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS messages_target ON messages(target, created_ms);
CREATE TABLE IF NOT EXISTS attempts (
  message_id TEXT NOT NULL REFERENCES messages(id),
  run INTEGER NOT NULL,
  step INTEGER NOT NULL,
  transport TEXT NOT NULL,
  carrier TEXT,
  outcome TEXT NOT NULL,
  reason TEXT,
  retryable INTEGER NOT NULL,
  detail TEXT,
  started_ms INTEGER NOT NULL,
  elapsed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts(message_id, run, started_ms);
CREATE INDEX IF NOT EXISTS attempts_open ON attempts(message_id) WHERE outcome = 'started';
CREATE TABLE IF NOT EXISTS fleet_events (
  at_ms INTEGER NOT NULL,
  event TEXT NOT NULL,
  node TEXT NOT NULL,
  token INTEGER
);
"""
MIGRATIONS = {  # from user_version N to N + 1
    1: "ALTER TABLE messages ADD COLUMN batch TEXT; ALTER TABLE messages ADD COLUMN batch_to TEXT;",
    2: "ALTER TABLE messages ADD COLUMN only_via TEXT;"
    " CREATE INDEX IF NOT EXISTS attempts_open ON attempts(message_id) WHERE outcome = 'started';",
    3: "CREATE TABLE IF NOT EXISTS fleet_events (at_ms INTEGER NOT NULL, event TEXT NOT NULL,"
    " node TEXT NOT NULL, token INTEGER);",
}


def state_error(path: Path, e: BaseException) -> StateError:
    """What went wrong with the journal, in words a user can act on: by SQLite's own error code
    (`sqlite_errorname`, e.g. SQLITE_FULL, SQLITE_CORRUPT, SQLITE_IOERR_WRITE), or the OS error."""
    code = getattr(e, "sqlite_errorname", "") or ""
    detail = getattr(e, "strerror", None) or str(e)
    if (
        code == "SQLITE_FULL"
        or getattr(e, "errno", None) == errno.ENOSPC
        or (code.startswith("SQLITE_IOERR") and _full(path))
    ):  # a WAL that cannot grow says only IOERR
        return StateError(
            f"cannot write the journal {path}: the disk is full; free some space", reason=Reason.DISK_FULL
        )
    if code in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return StateError(
            f"the journal {path} is damaged ({detail}); move it aside (clawrelay starts a new "
            "one) or restore it from a backup",
            reason=Reason.JOURNAL_CORRUPT,
        )
    unwritable = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")
    if isinstance(e, PermissionError) or code.startswith(unwritable):
        return StateError(
            f"cannot write the journal {path}: {detail} (set CLAWRELAY_HOME to a writable folder)",
            reason=Reason.STATE_UNAVAILABLE,
        )
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateError(
            f"the journal {path} stayed locked by another clawrelay for 30 s ({detail})",
            reason=Reason.STATE_UNAVAILABLE,
        )
    return StateError(
        f"cannot use the journal {path}: {e.__class__.__name__}: {detail}", reason=Reason.STATE_UNAVAILABLE
    )


def _full(path: Path) -> bool:
    """SQLite says only "disk I/O error" when the WAL or its index cannot grow: is that why?"""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 256 * 1024


class Rows:
    """A statement's rows, fetched at once so a failure while reading them is a StateError too."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


class Db:
    """The journal's connection: autocommit, explicit `BEGIN IMMEDIATE` for writes, and every
    sqlite3 failure turned into a StateError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(
                # a command inside the relay opens it in its worker thread and writes from the
                # relay's loop thread, one after the other (never at once)
                path,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            self.conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise state_error(path, e) from None

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows:
        try:
            return Rows(self.conn.execute(sql, args).fetchall())
        except sqlite3.Error as e:
            raise state_error(self.path, e) from None

    def executescript(self, sql: str) -> None:
        try:
            self.conn.executescript(sql)
        except sqlite3.Error as e:
            raise state_error(self.path, e) from None

    @contextmanager
    def write(self) -> Iterator[Db]:
        """One transaction; rolled back (and the error raised) if anything in it fails."""
        self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


def open_db(home: Path, notices: list[str]) -> Db:
    """The journal of `home`, created or migrated as needed. `notices` gets what a user should
    hear about (a journal found empty)."""
    path = home / "journal.db"
    try:
        if path.exists() and path.stat().st_size:
            db = Db(path)
            if int((db.execute("PRAGMA user_version").fetchone() or (0,))[0]) == SCHEMA_VERSION:
                db.execute("PRAGMA synchronous=FULL")
                return db
            db.close()
        # Many first-time processes at once (a group send) would race on creating the file and
        # on the switch to WAL: an flock makes the one-time setup happen once.
        fd = os.open(home / "journal.init.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _prepare(path, notices)
        finally:
            os.close(fd)
    except OSError as e:
        raise state_error(path, e) from None
    db = Db(path)
    db.execute("PRAGMA synchronous=FULL")
    return db


def _prepare(path: Path, notices: list[str]) -> None:
    """Under the init lock: create the journal whole, or migrate it (or say it was lost)."""
    if path.exists() and path.stat().st_size == 0:
        notices.append(f"the journal {path} was empty (0 bytes): its history is gone; starting a new one")
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600))
        db = Db(tmp)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            db.close()
        os.replace(tmp, path)
        return
    db = Db(path)
    try:
        version = int((db.execute("PRAGMA user_version").fetchone() or (0,))[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the journal {path} was written by a newer clawrelay (schema {version}); upgrade clawrelay",
                reason=Reason.STATE_UNAVAILABLE,
            )
        if version == 0:  # an empty database file of another making: give it the schema
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        else:
            for v in range(version, SCHEMA_VERSION):
                db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[v]} COMMIT;")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    finally:
        db.close()
