"""The journal: every message and every attempt, in SQLite, written before anything leaves.

The outbox is not a separate store: it is the messages whose status is `queued` (or
`ambiguous`, waiting for a person's decision). A message is inserted before its first attempt
and each attempt is committed as it ends, so a `kill -9` at any point leaves a true record and
a message that `outbox retry` will pick up. Events and commands are journaled the same way but
never queued: they are about now, and running one again is the user's call.

Messages sent together (`send @group`, `--to a,b`) share a batch id and what was typed, so the
log can show them as one send.
"""

from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from clawrelay.claims import Claim, in_flight
from clawrelay.envelope import Envelope
from clawrelay.outcome import Attempt, Delivery, Outcome, Status

SCHEMA_VERSION = 2
_SCHEMA = """
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
  batch_to TEXT
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
"""
_MIGRATIONS = {  # from user_version N to N + 1
    1: "ALTER TABLE messages ADD COLUMN batch TEXT; ALTER TABLE messages ADD COLUMN batch_to TEXT;",
}
QUEUEABLE = "message"  # the one kind the outbox holds


class Batch(NamedTuple):
    """The messages of one group send: a shared id, and what was typed ("@all", "a,b")."""

    id: str
    to: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "to": self.to}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class MessageRecord:
    id: str
    kind: str
    sender: str
    target: str
    body: str
    hops: int
    created_ms: int
    status: Status
    via: str | None
    reply: str | None
    runs: int
    updated_ms: int
    next_attempt_ms: int | None
    expires_ms: int
    batch: str | None
    batch_to: str | None
    attempts: list[Attempt]

    def envelope(self) -> Envelope:
        return Envelope(sender=self.sender, target=self.target, body=self.body, id=self.id,
                        hops=self.hops, created_ms=self.created_ms, kind=self.kind)

    def delivery(self) -> Delivery:
        return Delivery(self.id, self.target, self.status, self.via, self.attempts, self.reply)

    def to_json(self) -> dict[str, object]:
        out = self.delivery().to_json()
        out["status"] = str(self.status)
        out.update(sender=self.sender, kind=self.kind, created_ms=self.created_ms, runs=self.runs,
                   body=self.body, next_attempt_ms=self.next_attempt_ms, expires_ms=self.expires_ms,
                   batch=Batch(self.batch, self.batch_to or "").to_json() if self.batch else None)
        return out


class Journal:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "journal.db"
        self.lock_dir = home / "locks"
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout=30000")
        self._init_schema()
        self.db.execute("PRAGMA synchronous=FULL")

    def _init_schema(self) -> None:
        if self.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        # Many first-time processes at once (a group send, a test) would race on the switch to
        # WAL; an flock around the one-time setup makes it happen exactly once.
        fd = os.open(self.home / "journal.init.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(_SCHEMA)
            else:
                for v in range(version, SCHEMA_VERSION):
                    self.db.executescript(f"BEGIN IMMEDIATE; {_MIGRATIONS[v]} COMMIT;")
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            os.close(fd)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- ownership -------------------------------------------------------------------------

    def claim(self, message_id: str) -> Claim | None:
        claim = Claim(self.lock_dir, message_id)
        return claim if claim.acquire() else None

    def in_flight(self, message_id: str) -> bool:
        return in_flight(self.lock_dir, message_id)

    # -- writes ----------------------------------------------------------------------------

    def add_message(self, env: Envelope, *, expires_in_s: float, status: Status = Status.QUEUED,
                    batch: Batch | None = None) -> None:
        """Record a new message as queued (an event or a command as failed until it says otherwise),
        before any attempt. A message is added with its claim held."""
        t = now_ms()
        batch_id, batch_to = batch or (None, None)
        with self._write() as db:
            db.execute(
                "INSERT INTO messages (id, kind, sender, target, body, hops, created_ms, status,"
                " runs, updated_ms, expires_ms, batch, batch_to) VALUES (?,?,?,?,?,?,?,?,0,?,?,?,?)",
                (env.id, env.kind, env.sender, env.target, env.body, env.hops, env.created_ms,
                 status.value, t, env.created_ms + int(expires_in_s * 1000), batch_id, batch_to),
            )

    def begin_run(self, message_id: str) -> int:
        with self._write() as db:
            db.execute("UPDATE messages SET runs = runs + 1, updated_ms = ? WHERE id = ?",
                       (now_ms(), message_id))
            return int(db.execute("SELECT runs FROM messages WHERE id = ?", (message_id,)).fetchone()[0])

    def add_attempt(self, message_id: str, a: Attempt) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO attempts (message_id, run, step, transport, carrier, outcome, reason,"
                " retryable, detail, started_ms, elapsed_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (message_id, a.run, a.step, a.transport, a.carrier, a.outcome.value, a.reason,
                 int(a.retryable), a.detail, a.started_ms, a.elapsed_ms),
            )

    def finish(self, delivery: Delivery, *, backoff_s: float = 60.0, max_backoff_s: float = 3600.0) -> None:
        """Store a run's end. A message still queued gets its next automatic retry time."""
        t = now_ms()
        with self._write() as db:
            next_ms = None
            if delivery.status is Status.QUEUED:
                runs = db.execute("SELECT runs FROM messages WHERE id = ?", (delivery.id,)).fetchone()[0]
                wait = min(max_backoff_s, backoff_s * 2 ** max(0, runs - 1)) * random.uniform(0.8, 1.2)
                next_ms = t + int(wait * 1000)
            db.execute("UPDATE messages SET status = ?, via = ?, reply = ?, updated_ms = ?,"
                       " next_attempt_ms = ? WHERE id = ?",
                       (delivery.status.value, delivery.via, delivery.reply, t, next_ms, delivery.id))

    def set_status(self, message_id: str, status: Status) -> None:
        with self._write() as db:
            db.execute("UPDATE messages SET status = ?, updated_ms = ?, next_attempt_ms = NULL"
                       " WHERE id = ?", (status.value, now_ms(), message_id))

    # -- reads -----------------------------------------------------------------------------

    _COLS = ("id, kind, sender, target, body, hops, created_ms, status, via, reply, runs,"
             " updated_ms, next_attempt_ms, expires_ms, batch, batch_to")

    def _records(self, rows: Iterable[tuple]) -> list[MessageRecord]:
        rows = list(rows)
        attempts: dict[str, list[Attempt]] = {r[0]: [] for r in rows}
        ids = list(attempts)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for row in self.db.execute(
                "SELECT message_id, run, step, transport, carrier, outcome, reason, retryable, detail,"
                f" started_ms, elapsed_ms FROM attempts WHERE message_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY run, started_ms, rowid", chunk,
            ):
                attempts[row[0]].append(Attempt(
                    run=row[1], step=row[2], transport=row[3], carrier=row[4], outcome=Outcome(row[5]),
                    reason=row[6], retryable=bool(row[7]), detail=row[8], started_ms=row[9],
                    elapsed_ms=row[10]))
        return [MessageRecord(*r[:7], Status(r[7]), *r[8:], attempts=attempts[r[0]]) for r in rows]

    def get(self, id_or_prefix: str) -> MessageRecord | None:
        """A message by its id or a unique prefix of it. Raises LookupError when ambiguous."""
        rows = self.db.execute(f"SELECT {self._COLS} FROM messages WHERE substr(id, 1, ?) = ?"
                               " ORDER BY id LIMIT 2", (len(id_or_prefix), id_or_prefix)).fetchall()
        if len(rows) > 1 and rows[0][0] != id_or_prefix:
            raise LookupError(f"{id_or_prefix!r} matches more than one message; give more of the id")
        return self._records(rows[:1])[0] if rows else None

    def recent(self, *, target: str | None = None, last: int = 20) -> list[MessageRecord]:
        where, args = ("WHERE target = ?", [target]) if target else ("", [])
        rows = self.db.execute(
            f"SELECT {self._COLS} FROM messages {where} ORDER BY created_ms DESC, id DESC LIMIT ?",
            [*args, last]).fetchall()
        return self._records(reversed(rows))

    def outbox(self, *, include_dead: bool = False, target: str | None = None) -> list[MessageRecord]:
        """Messages nothing has delivered yet, oldest first."""
        statuses = [Status.QUEUED.value, Status.AMBIGUOUS.value]
        if include_dead:
            statuses.append(Status.DEAD.value)
        where = f"kind = ? AND status IN ({','.join('?' * len(statuses))})"
        args: list[object] = [QUEUEABLE, *statuses]
        if target is not None:
            where, args = where + " AND target = ?", [*args, target]
        rows = self.db.execute(f"SELECT {self._COLS} FROM messages WHERE {where} ORDER BY created_ms, id",
                               args).fetchall()
        return self._records(rows)

    def waiting(self) -> dict[str, dict[str, int]]:
        """Per target, how many messages wait in the outbox: {"queued": n, "ambiguous": m}."""
        out: dict[str, dict[str, int]] = {}
        for target, status, n in self.db.execute(
            "SELECT target, status, count(*) FROM messages WHERE kind = ? AND status IN (?, ?)"
            " GROUP BY target, status", (QUEUEABLE, Status.QUEUED.value, Status.AMBIGUOUS.value)):
            out.setdefault(target, {"queued": 0, "ambiguous": 0})[status] = n
        return out

    def last_delivered(self) -> dict[str, MessageRecord]:
        """Per target, the newest message or event that was delivered: which path, and when."""
        rows = self.db.execute(
            f"SELECT {self._COLS} FROM messages WHERE rowid IN (SELECT rowid FROM (SELECT rowid,"
            " target, max(updated_ms) FROM messages WHERE status = ? AND kind IN ('message', 'event')"
            " GROUP BY target))", (Status.DELIVERED.value,)).fetchall()
        return {r.target: r for r in self._records(rows)}

    def expire(self) -> list[str]:
        """Queued messages past their expiry become dead letters (unless a sender holds one)."""
        t = now_ms()
        expired = [r[0] for r in self.db.execute(
            "SELECT id FROM messages WHERE status = ? AND expires_ms <= ?", (Status.QUEUED.value, t))]
        dead = []
        for message_id in expired:
            claim = self.claim(message_id)
            if claim is None:
                continue
            try:
                self.set_status(message_id, Status.DEAD)
                dead.append(message_id)
            finally:
                claim.release(finished=True)
        return dead
