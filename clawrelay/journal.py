"""The journal: every message and every attempt, in SQLite, written before anything leaves.

The outbox is not a separate store: it is the messages whose status is `queued` (or
`ambiguous`, waiting for a person's decision). A message is inserted before its first attempt,
each attempt is inserted as `started` before it can leave the machine and completed the moment it
ends, so a `kill -9` at any point leaves a true record: a message that `outbox retry` will pick
up, and, where the sender died mid-attempt, an attempt that `recovery` turns into what it was
(interrupted: it may have arrived). Events and commands are journaled the same way but never
queued: they are about now, and running one again is the user's call.

Messages sent together (`send @group`, `--to a,b`) share a batch id and what was typed, so the
log can show them as one send. A message sent with `--via T` keeps that restriction for every
later retry (`only_via`).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from clawrelay.claims import Claim, in_flight
from clawrelay.envelope import Envelope
from clawrelay.errors import ClawrelayError
from clawrelay.ids import SHORT_ID
from clawrelay.outcome import Attempt, Delivery, Outcome, Status
from clawrelay.reasons import Reason
from clawrelay.store import Db, open_db

# (transport, started_ms) → may an attempt of that transport, interrupted, be resent now?
ResendPolicy = Callable[[str, int], bool]

QUEUEABLE = "message"  # the one kind the outbox holds
FLEET = "fleet"  # a message another relay of the fleet could not deliver, delivered here for it


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
    only_via: str | None
    attempts: list[Attempt]

    def envelope(self) -> Envelope:
        return Envelope(
            sender=self.sender,
            target=self.target,
            body=self.body,
            id=self.id,
            hops=self.hops,
            created_ms=self.created_ms,
            kind=self.kind,
        )

    def delivery(self) -> Delivery:
        return Delivery(self.id, self.target, self.status, self.via, self.attempts, self.reply)

    def to_json(self) -> dict[str, object]:
        out = self.delivery().to_json()
        out["status"] = str(self.status)
        out.update(
            sender=self.sender,
            kind=self.kind,
            created_ms=self.created_ms,
            runs=self.runs,
            body=self.body,
            next_attempt_ms=self.next_attempt_ms,
            expires_ms=self.expires_ms,
            batch=Batch(self.batch, self.batch_to or "").to_json() if self.batch else None,
            only_via=self.only_via,
        )
        return out


# the messages table's columns, named as MessageRecord's fields, in the order reads select them
_FIELDS = tuple(f for f in MessageRecord.__dataclass_fields__ if f != "attempts")


class Journal:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "journal.db"
        self.lock_dir = home / "locks"
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        self.notices: list[str] = []  # what the user should hear about this journal (it was lost)
        self.db: Db = open_db(home, self.notices)
        # writes that ride the next transaction (see `_write`)
        self._later: list[tuple[str, tuple[object, ...]]] = []

    def close(self) -> None:
        if self._later:
            with contextlib.suppress(ClawrelayError), self._write():
                pass
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[Db]:
        """One transaction, beginning with the writes left for it.

        Every commit is an fsync (synchronous=FULL: what is journaled survives a power cut), and a
        message's record takes several. Two of them need not be durable on their own, because
        what follows them at once is, in the same order: a run's start (nothing has left until
        its first attempt is recorded `started`, which carries it) and a delivered attempt's end
        (the run's finish, written right after, carries it). A sender that dies between the two
        leaves what the journal had before: a run not begun, or an attempt `started`, which
        recovery settles as interrupted. So those wait for the next transaction: two fsyncs
        fewer per message."""
        with self.db.write() as db:
            for sql, args in self._later:
                db.execute(sql, args)
            yield db
        self._later.clear()

    # -- ownership -------------------------------------------------------------------------

    def claim(self, message_id: str) -> Claim | None:
        claim = Claim(self.lock_dir, message_id)
        return claim if claim.acquire() else None

    def in_flight(self, message_id: str) -> bool:
        return in_flight(self.lock_dir, message_id)

    # -- writes ----------------------------------------------------------------------------

    def add_message(
        self,
        env: Envelope,
        *,
        expires_in_s: float,
        status: Status = Status.QUEUED,
        batch: Batch | None = None,
        only_via: str | None = None,
    ) -> None:
        """Record a new message as queued (an event or a command as failed until it says otherwise),
        before any attempt. A message is added with its claim held."""
        t = now_ms()
        batch_id, batch_to = batch or (None, None)
        with self._write() as db:
            db.execute(
                "INSERT INTO messages (id, kind, sender, target, body, hops, created_ms, status,"
                " runs, updated_ms, expires_ms, batch, batch_to, only_via)"
                " VALUES (?,?,?,?,?,?,?,?,0,?,?,?,?,?)",
                (
                    env.id,
                    env.kind,
                    env.sender,
                    env.target,
                    env.body,
                    env.hops,
                    env.created_ms,
                    status.value,
                    t,
                    env.created_ms + int(expires_in_s * 1000),
                    batch_id,
                    batch_to,
                    only_via,
                ),
            )

    def begin_run(self, message_id: str) -> int:
        """The number of the message's new run, recorded with the next write (see `_write`); its
        claim is held, so nothing else counts its runs meanwhile."""
        row = self.db.execute("SELECT runs FROM messages WHERE id = ?", (message_id,)).fetchone()
        self._later.append(
            ("UPDATE messages SET runs = runs + 1, updated_ms = ? WHERE id = ?", (now_ms(), message_id))
        )
        return int(row[0]) + 1 if row else 1

    def start_attempt(self, message_id: str, a: Attempt) -> int:
        """Record an attempt as `started` before it can leave the machine; its row id, for
        `end_attempt`. A sender that dies before ending it leaves the row for `recovery`."""
        with self._write() as db:
            db.execute(
                "INSERT INTO attempts (message_id, run, step, transport, carrier, outcome, reason,"
                " retryable, detail, started_ms, elapsed_ms) VALUES (?,?,?,?,?,?,NULL,0,NULL,?,0)",
                (message_id, a.run, a.step, a.transport, a.carrier, Outcome.STARTED.value, a.started_ms),
            )
            return int(db.execute("SELECT last_insert_rowid()").fetchone()[0])  # type: ignore[index]

    def end_attempt(self, row: int, a: Attempt, *, finish_follows: bool = False) -> None:
        """Complete a `started` row: now, or (`finish_follows`, for a delivered attempt whose
        run's finish the caller writes at once) with that finish (see `_write`). Any other end is
        durable at once: a wait for a retry may come next."""
        sql = (
            "UPDATE attempts SET carrier = ?, outcome = ?, reason = ?, retryable = ?, detail = ?,"
            " elapsed_ms = ? WHERE rowid = ?"
        )
        args = (a.carrier, a.outcome.value, a.reason, int(a.retryable), a.detail, a.elapsed_ms, row)
        if finish_follows and a.outcome is Outcome.DELIVERED:
            self._later.append((sql, args))
            return
        with self._write() as db:
            db.execute(sql, args)

    def add_attempt(self, message_id: str, a: Attempt) -> None:
        with self._write() as db:
            _insert_attempt(db, message_id, a)

    def record_elsewhere(self, runs: list[tuple[Attempt, Delivery]]) -> None:
        """Runs another machine made of these messages (the fleet delivered them, or gave up):
        each a new run with its one attempt, and the message's end, all in one transaction. With
        each message's claim held by the caller."""
        t = now_ms()
        with self._write() as db:
            for a, d in runs:
                _insert_attempt(db, d.id, a)
                db.execute(
                    "UPDATE messages SET runs = ?, status = ?, via = ?, updated_ms = ?,"
                    " next_attempt_ms = NULL WHERE id = ?",
                    (a.run, d.status.value, d.via, t, d.id),
                )

    def finish(self, delivery: Delivery, *, backoff_s: float = 60.0, max_backoff_s: float = 3600.0) -> None:
        """Store a run's end. A message still queued gets its next automatic retry time."""
        t = now_ms()
        with self._write() as db:
            next_ms = None
            if delivery.status is Status.QUEUED:
                row = db.execute("SELECT runs FROM messages WHERE id = ?", (delivery.id,)).fetchone()
                runs = int(row[0]) if row else 1
                wait = min(max_backoff_s, backoff_s * 2 ** max(0, runs - 1)) * random.uniform(0.8, 1.2)
                next_ms = t + int(wait * 1000)
            db.execute(
                "UPDATE messages SET status = ?, via = ?, reply = ?, updated_ms = ?,"
                " next_attempt_ms = ? WHERE id = ?",
                (delivery.status.value, delivery.via, delivery.reply, t, next_ms, delivery.id),
            )

    def set_reply(self, message_id: str, reply: str) -> None:
        """The agent's answer, come after the message was recorded delivered."""
        with self._write() as db:
            db.execute(
                "UPDATE messages SET reply = ?, updated_ms = ? WHERE id = ?", (reply, now_ms(), message_id)
            )

    def set_status(self, message_id: str, status: Status) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET status = ?, updated_ms = ?, next_attempt_ms = NULL WHERE id = ?",
                (status.value, now_ms(), message_id),
            )

    def add_fleet_event(self, event: str, node: str, token: int | None, *, once: bool = False) -> bool:
        """What this relay saw as the fleet's leader (joined, left) or became (elected). `once`:
        not when the same (event, node, token) is journaled already. → whether it was added."""
        with self._write() as db:
            seen = "SELECT 1 FROM fleet_events WHERE event = ? AND node = ? AND token IS ?"
            if once and db.execute(seen, (event, node, token)).fetchone():
                return False
            db.execute(
                "INSERT INTO fleet_events (at_ms, event, node, token) VALUES (?,?,?,?)",
                (now_ms(), event, node, token),
            )
        return True

    def fleet_events(self, last: int = 20) -> list[dict[str, object]]:
        rows = self.db.execute(
            "SELECT at_ms, event, node, token FROM fleet_events ORDER BY rowid DESC LIMIT ?", (last,)
        ).fetchall()
        return [{"at_ms": r[0], "event": r[1], "node": r[2], "token": r[3]} for r in reversed(rows)]

    # -- interrupted attempts (see recovery) ------------------------------------------------

    def open_attempts(self) -> list[str]:
        """Messages with an attempt that started and has not ended: in flight, or orphaned."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT message_id FROM attempts WHERE outcome = ?", (Outcome.STARTED.value,)
            )
        ]

    def close_interrupted(self, message_id: str, resend_safe: ResendPolicy) -> Status | None:
        """With the message's claim held (its sender is gone): each attempt it left `started`
        becomes `ambiguous`, reason `interrupted`, retryable where resending it is harmless. The
        message stays queued only if every such attempt may be resent; else it is ambiguous (a
        person decides). Returns the message's status, or None when nothing was open."""
        query = "SELECT rowid, transport, started_ms FROM attempts WHERE message_id = ? AND outcome = ?"
        if not self.db.execute(query, (message_id, Outcome.STARTED.value)).fetchall():
            return None  # the common case, without a write: nothing was left open
        with self._write() as db:
            rows = db.execute(query, (message_id, Outcome.STARTED.value)).fetchall()
            if not rows:
                return None
            every_safe = True
            for row, transport, started in rows:
                safe = resend_safe(transport, started)
                every_safe &= safe
                what = (
                    "resending it is harmless, so it stays queued"
                    if safe
                    else "it may have arrived: not resent automatically (outbox retry ID sends it again)"
                )
                db.execute(
                    "UPDATE attempts SET outcome = ?, reason = ?, retryable = ?, detail = ? WHERE rowid = ?",
                    (
                        Outcome.AMBIGUOUS.value,
                        Reason.INTERRUPTED.value,
                        int(safe),
                        f"interrupted: the sender died while {transport} ran; {what}",
                        row,
                    ),
                )
            found = db.execute("SELECT kind, status FROM messages WHERE id = ?", (message_id,)).fetchone()
            if found is None:
                return None
            kind, status = found[0], Status(found[1])
            stays = (Status.QUEUED, Status.FAILED, Status.OFFERED)  # offered: still a message
            if status in stays and not (kind == QUEUEABLE and every_safe):
                status = Status.AMBIGUOUS  # it may have happened: a person decides
            db.execute(
                "UPDATE messages SET status = ?, next_attempt_ms = NULL, updated_ms = ? WHERE id = ?",
                (status.value, now_ms(), message_id),
            )
            return status

    def settle_interrupted(self, message_id: str) -> None:
        """An interrupted attempt whose resend was harmless then is not any more (the gateway's
        idempotency window passed before a retry came): the message becomes ambiguous."""
        with self._write() as db:
            db.execute(
                "UPDATE attempts SET retryable = 0, detail = detail || ?"
                " WHERE message_id = ? AND reason = ? AND retryable = 1",
                (
                    "; by the next retry resending was no longer harmless",
                    message_id,
                    Reason.INTERRUPTED.value,
                ),
            )
            db.execute(
                "UPDATE messages SET status = ?, next_attempt_ms = NULL, updated_ms = ? WHERE id = ?",
                (Status.AMBIGUOUS.value, now_ms(), message_id),
            )

    # -- reads -----------------------------------------------------------------------------

    _COLS = ", ".join(_FIELDS)

    def _records(self, rows: Iterable[tuple[Any, ...]]) -> list[MessageRecord]:
        rows = list(rows)
        attempts: dict[str, list[Attempt]] = {r[0]: [] for r in rows}
        ids = list(attempts)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for row in self.db.execute(
                "SELECT message_id, run, step, transport, carrier, outcome, reason, retryable, detail,"
                f" started_ms, elapsed_ms FROM attempts WHERE message_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY run, started_ms, rowid",
                chunk,
            ):
                attempts[row[0]].append(
                    Attempt(
                        run=row[1],
                        step=row[2],
                        transport=row[3],
                        carrier=row[4],
                        outcome=Outcome(row[5]),
                        reason=row[6],
                        retryable=bool(row[7]),
                        detail=row[8],
                        started_ms=row[9],
                        elapsed_ms=row[10],
                    )
                )
        return [_message(r, attempts[r[0]]) for r in rows]

    def by_id(self, message_id: str) -> MessageRecord | None:
        """The message with exactly this id (no prefix search: a miss costs one index lookup)."""
        rows = self.db.execute(f"SELECT {self._COLS} FROM messages WHERE id = ?", (message_id,)).fetchall()
        return self._records(rows)[0] if rows else None

    def get(self, given: str) -> MessageRecord | None:
        """A message by its id, or by a part of it that only one message has: its start or its end
        (`short_id`). Raises LookupError when more than one message has it."""
        given = given.strip().lower()
        if not given:
            return None
        rows = self.db.execute(f"SELECT {self._COLS} FROM messages WHERE id = ?", (given,)).fetchall()
        if not rows:
            n = len(given)
            rows = self.db.execute(
                f"SELECT {self._COLS} FROM messages WHERE substr(id, 1, ?) = ?"
                " OR substr(id, -?) = ? ORDER BY id LIMIT 2",
                (n, given, n, given),
            ).fetchall()
        if len(rows) > 1:
            shown = given if len(given) <= 40 else given[:37] + "…"
            raise LookupError(
                f"{shown!r} matches more than one message; give more of the id "
                f"(its last {SHORT_ID} characters are unique in practice)"
            )
        return self._records(rows)[0] if rows else None

    def recent(self, *, target: str | None = None, last: int = 20) -> list[MessageRecord]:
        where, args = ("WHERE target = ?", [target]) if target else ("", [])
        rows = self.db.execute(
            f"SELECT {self._COLS} FROM messages {where} ORDER BY created_ms DESC, rowid DESC LIMIT ?",
            [*args, last],
        ).fetchall()
        return self._records(reversed(rows))

    def outbox(self, *, include_dead: bool = False, target: str | None = None) -> list[MessageRecord]:
        """Messages nothing has delivered yet, oldest first."""
        statuses = [Status.QUEUED.value, Status.AMBIGUOUS.value, Status.OFFERED.value]
        if include_dead:
            statuses.append(Status.DEAD.value)
        where = f"kind = ? AND status IN ({','.join('?' * len(statuses))})"
        args: list[object] = [QUEUEABLE, *statuses]
        if target is not None:
            where, args = where + " AND target = ?", [*args, target]
        rows = self.db.execute(
            f"SELECT {self._COLS} FROM messages WHERE {where} ORDER BY created_ms, rowid", args
        ).fetchall()
        return self._records(rows)

    def waiting(self) -> dict[str, dict[str, int]]:
        """Per target, how many messages wait in the outbox: {"queued": n, "ambiguous": m}, and
        `offered` (to the fleet) when some are."""
        out: dict[str, dict[str, int]] = {}
        for target, status, n in self.db.execute(
            "SELECT target, status, count(*) FROM messages WHERE kind = ? AND status IN (?, ?, ?)"
            " GROUP BY target, status",
            (QUEUEABLE, Status.QUEUED.value, Status.AMBIGUOUS.value, Status.OFFERED.value),
        ):
            out.setdefault(target, {"queued": 0, "ambiguous": 0})[status] = n
        return out

    def last_delivered(self) -> dict[str, MessageRecord]:
        """Per target, the newest message or event that was delivered: which path, and when."""
        rows = self.db.execute(
            f"SELECT {self._COLS} FROM messages WHERE rowid IN (SELECT rowid FROM (SELECT rowid,"
            " target, max(updated_ms) FROM messages WHERE status = ? AND kind IN ('message', 'event')"
            " GROUP BY target))",
            (Status.DELIVERED.value,),
        ).fetchall()
        return {r.target: r for r in self._records(rows)}

    def expire(self) -> list[str]:
        """Queued messages past their expiry become dead letters (unless a sender holds one)."""
        t = now_ms()
        expired = [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM messages WHERE status = ? AND expires_ms <= ?", (Status.QUEUED.value, t)
            )
        ]
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


def _insert_attempt(db: Db, message_id: str, a: Attempt) -> None:
    db.execute(
        "INSERT INTO attempts (message_id, run, step, transport, carrier, outcome, reason,"
        " retryable, detail, started_ms, elapsed_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            message_id,
            a.run,
            a.step,
            a.transport,
            a.carrier,
            a.outcome.value,
            a.reason,
            int(a.retryable),
            a.detail,
            a.started_ms,
            a.elapsed_ms,
        ),
    )


def _message(row: tuple[Any, ...], attempts: list[Attempt]) -> MessageRecord:
    """A row of `Journal._COLS`, in that order, as a record (its names are the record's fields)."""
    fields = dict(zip(_FIELDS, row, strict=True))
    return MessageRecord(**{**fields, "status": Status(fields["status"])}, attempts=attempts)
