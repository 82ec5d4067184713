"""The fleet's shared outbox: a message its sender's relay could not deliver, delivered by any
relay that can, once.

- **Offer.** The sender's relay adds the message to its target's stream (`keys.outbox`) once
  (`offered:ID` says it was), then marks it `offered` in its own journal: from then on its own
  flusher leaves it to the fleet, so the two never race.
- **Claim.** A relay whose routes know the target, and whose last probes found a way to it, reads
  the stream through the consumer group. Reading is not owning: before any attempt it takes the
  message's lock (`lock:ID`, renewed while it delivers, gone with a dead relay after the ttl), and
  records that an attempt begins (`attempt:ID`, with the transports it may use).
- **Deliver** down its own chain, with the sender's message id (still the idempotency key),
  journaled on the delivering machine as kind `fleet`.
- **Publish.** Only after its journal says delivered (or ambiguous) it writes `result:ID`,
  acknowledges the entry and lets the lock go, in one script. Not delivered: the lock and the
  attempt record go, the entry stays pending, and a relay picks it up again after the ttl.
- **Settle.** The sender's relay reads `result:ID` and writes it into its own journal ("delivered
  by NODE via TRANSPORT"), so its `log` tells the truth and the message leaves its outbox.

Exactly once, or ambiguous and said so: a relay that finds `attempt:ID` left by a relay that died
mid-attempt resends only if every transport that attempt could have used says a resend is
harmless by now (`Transport.resend_window`: a gateway's idempotency window, a memory note that
finds its id; the age read in Redis's clock, which stamped the start), and then only through
those transports; otherwise the message is published `ambiguous` for a person to decide. A relay
that finds its own journal already says delivered (it died before publishing) publishes that,
and sends nothing again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from clawrelay.envelope import Envelope, check_text
from clawrelay.fleet import keys, lua
from clawrelay.fleet.connect import Redis
from clawrelay.ids import is_id
from clawrelay.journal import MessageRecord, now_ms
from clawrelay.outcome import Attempt, Delivery, Outcome, Status
from clawrelay.reasons import Reason

log = logging.getLogger("clawrelay.fleet")

RESULT_KEPT_MS = 7 * 86400 * 1000  # a result waits this long for its sender to read it
EXPIRE_GRACE_MS = 10 * 60 * 1000  # past a message's expiry, before the leader calls it dead


# -- the sender's side --------------------------------------------------------------------------


def entry_of(record: MessageRecord, origin: str) -> dict[str, str]:
    return {
        "id": record.id,
        "sender": record.sender,
        "target": record.target,
        "body": record.body,
        "hops": str(record.hops),
        "created_ms": str(record.created_ms),
        "expires_ms": str(record.expires_ms),
        "only_via": record.only_via or "",
        "origin": origin,
    }


async def offer(redis: Redis, record: MessageRecord, origin: str) -> str:
    """Put the message in its target's stream, unless it is there or settled already: the
    entry's id, `offered` or `settled`."""
    pairs = [x for kv in entry_of(record, origin).items() for x in kv]
    out = await redis.eval(
        lua.OFFER,
        4,
        keys.offered(record.id),
        keys.result(record.id),
        keys.outbox(record.target),
        keys.STREAMS,
        keys.GROUP,
        origin,
        *pairs,
    )
    return str(out)


@dataclass
class Result:
    status: str  # delivered, ambiguous, dead
    node: str
    via: str
    at_ms: int
    detail: str
    also: str = ""  # a second outcome (two relays delivered: said, never hidden)

    @classmethod
    def of(cls, h: dict[str, str]) -> Result | None:
        if "status" not in h:
            return None
        return cls(
            h["status"],
            h.get("node", ""),
            h.get("via", ""),
            int(h.get("at_ms") or 0),
            h.get("detail", ""),
            h.get("also", ""),
        )


async def results(redis: Redis, ids: list[str]) -> dict[str, tuple[Result | None, bool]]:
    """For each message: its result if one is published, and whether it is still offered."""
    if not ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.hgetall(keys.result(i))
            pipe.exists(keys.offered(i))
        raw = await pipe.execute()
    return {i: (Result.of(raw[2 * n]), bool(raw[2 * n + 1])) for n, i in enumerate(ids)}


async def forget(redis: Redis, message_id: str) -> None:
    """The sender has the result in its journal: the fleet need not keep it."""
    await redis.delete(keys.result(message_id), keys.offered(message_id))


def settlement(record: MessageRecord, result: Result, me: str) -> tuple[Attempt, Delivery] | None:
    """What the fleet did with one of this machine's messages, as the run to add to its journal
    (one attempt, carrier `fleet:NODE`) and the message's end; None when its journal has it
    already (delivered from here) or knows better (delivered, and this says less)."""
    if result.node == me and result.status != "dead" and record.status is not Status.OFFERED:
        return None  # delivered from here: this journal has the attempts already
    if record.status is Status.DELIVERED and result.status != "delivered":
        return None
    status = {
        "delivered": Status.DELIVERED,
        "ambiguous": Status.AMBIGUOUS,
        "dead": Status.DEAD,
    }.get(result.status)
    if status is None:
        return None
    if result.status == "dead":
        outcome, detail = Outcome.FAILED, f"expired in the fleet's outbox ({result.node} is the leader)"
    else:
        outcome = Outcome.DELIVERED if status is Status.DELIVERED else Outcome.AMBIGUOUS
        detail = (
            f"{result.status} by {result.node}"
            + (f" via {result.via}" if result.via else "")
            + (f": {result.detail}" if result.detail and status is not Status.DELIVERED else "")
        )
    if result.also:
        detail += f"; also {result.also}"
    attempt = Attempt(
        step=0,
        transport=result.via or "fleet",
        outcome=outcome,
        carrier=f"fleet:{result.node}",
        reason=None
        if outcome is Outcome.DELIVERED
        else (Reason.EXPIRED if status is Status.DEAD else Reason.AMBIGUOUS),
        detail=detail,
        started_ms=result.at_ms or now_ms(),
        run=record.runs + 1,
    )
    return attempt, Delivery(record.id, record.target, status, result.via or None)


# -- the delivering side ------------------------------------------------------------------------


@dataclass
class Marker:
    """`attempt:ID`: an attempt began at `node` and was not settled."""

    node: str
    instance: str
    started_ms: int
    plan: list[str]

    def tail(self) -> str:
        """The JSON without its start and opening brace: MARK puts Redis's clock in front."""
        return json.dumps({"node": self.node, "instance": self.instance, "plan": self.plan})[1:]

    @classmethod
    def parse(cls, raw: str) -> Marker | None:
        try:
            d = json.loads(raw)
            return cls(str(d["node"]), str(d.get("instance", "")), int(d["started_ms"]), list(d["plan"]))
        except (ValueError, KeyError, TypeError):
            return None


def envelope_of(fields: dict[str, str]) -> tuple[Envelope, str | None, int]:
    """An entry as the message it carries: its envelope, its `--via` and when it expires.
    ValueError for an entry no clawrelay wrote (an id that is not one names a lock file here)."""
    if not is_id(fields["id"]):
        raise ValueError("not a message id")
    check_text(fields["body"])  # UsageError (a ClawrelayError) for a NUL or invalid text
    env = Envelope(
        sender=fields["sender"],
        target=fields["target"],
        body=fields["body"],
        id=fields["id"],
        hops=int(fields.get("hops") or 0),
        created_ms=int(fields.get("created_ms") or 0),
    )
    return env, (fields.get("only_via") or None), int(fields.get("expires_ms") or 0)


class Claim(NamedTuple):
    state: str  # settled, held, ok
    detail: str  # held: the holder ("NODE INSTANCE"); ok: the attempt marker an earlier attempt left
    now_ms: int  # Redis's clock, the one a marker's start is in (0 when settled)


async def claim(redis: Redis, message_id: str, holder: str, ttl: float, stream: str, entry: str) -> Claim:
    """Take the message of `entry` to deliver it: `settled` (a result; or the entry gone from
    its stream, or not the one `offered:ID` names: its sender has settled and forgotten it, or
    offered it again after Redis lost the first offer), `held` by another, or `ok` with the
    attempt marker an earlier attempt left."""
    out = await redis.eval(
        lua.CLAIM,
        5,
        keys.lock(message_id),
        keys.result(message_id),
        keys.attempt(message_id),
        stream,
        keys.offered(message_id),
        holder,
        int(ttl * 1000),
        entry,
    )
    items = [str(x) for x in out]
    return Claim(items[0], items[1] if len(items) > 1 else "", int(items[2]) if len(items) > 2 else 0)


async def mark(redis: Redis, message_id: str, holder: str, marker: Marker) -> str | None:
    """Record that an attempt begins (its start in Redis's clock, whatever `marker` says): the
    record as stored (what `release` takes), or None when the lock is no longer ours."""
    out = await redis.eval(
        lua.MARK, 2, keys.lock(message_id), keys.attempt(message_id), holder, marker.tail()
    )
    return str(out) if out else None


async def renew(redis: Redis, message_id: str, holder: str, ttl: float) -> bool:
    return bool(await redis.eval(lua.RENEW, 1, keys.lock(message_id), holder, int(ttl * 1000)))


async def release(redis: Redis, message_id: str, holder: str, marker: str | None = None) -> None:
    """Let the message go; `marker` (as `mark` stored it): this relay's attempt record, which goes too."""
    await redis.eval(lua.RELEASE, 2, keys.lock(message_id), keys.attempt(message_id), holder, marker or "")


async def publish(
    redis: Redis,
    *,
    message_id: str,
    stream: str,
    entry: str,
    holder: str,
    status: str,
    node: str,
    via: str,
    detail: str = "",
) -> None:
    await redis.eval(
        lua.PUBLISH,
        5,
        keys.result(message_id),
        keys.lock(message_id),
        keys.attempt(message_id),
        stream,
        keys.offered(message_id),
        holder,
        entry,
        keys.GROUP,
        RESULT_KEPT_MS,
        status,
        node,
        via,
        now_ms(),
        detail[:400],
    )


async def expire(redis: Redis, leader_value: str, node: str) -> int:
    """The leader's job: entries past their expiry (and a grace for an attempt that began just
    before it), held by nobody and settled by nobody, become `dead` for their sender. Fenced: -1
    stops it when the lease is no longer `leader_value`."""
    done = 0
    now = now_ms()
    for stream in sorted(await redis.smembers(keys.STREAMS)):
        start = "-"
        while True:
            page: list[Any] = await redis.xrange(stream, min=start, count=200)
            for entry, fields in page:
                if int(fields.get("expires_ms") or 0) + EXPIRE_GRACE_MS > now:
                    continue
                i = fields.get("id", "")
                out = await redis.eval(
                    lua.EXPIRE,
                    6,
                    keys.result(i),
                    keys.lock(i),
                    stream,
                    keys.LEADER,
                    keys.attempt(i),
                    keys.offered(i),
                    leader_value,
                    entry,
                    keys.GROUP,
                    RESULT_KEPT_MS,
                    node,
                    now,
                    "not delivered by any relay before it expired",
                )
                if int(out) < 0:
                    return done
                done += int(out)
            if len(page) < 200:
                break
            start = "(" + page[-1][0]
    return done


class Withdrawn(NamedTuple):
    state: str  # settled (the fleet has its outcome: `result`), held (`holder` delivers it now), withdrawn
    result: Result | None = None
    holder: str = ""
    began: Marker | None = None  # withdrawn: an attempt began there and was never settled


async def withdraw(redis: Redis, record: MessageRecord) -> Withdrawn:
    """The sender takes an offered message back (`--take-back`): out of its target's stream, so
    no relay claims it, unless a relay delivers it right now or the fleet has its outcome."""
    out = [
        str(x)
        for x in await redis.eval(
            lua.WITHDRAW,
            5,
            keys.offered(record.id),
            keys.result(record.id),
            keys.lock(record.id),
            keys.attempt(record.id),
            keys.outbox(record.target),
            keys.GROUP,
            RESULT_KEPT_MS,
        )
    ]
    if out[0] == "settled":
        status, node, via, detail, also, at_ms = out[1:7]
        at = int(at_ms) if at_ms.isdigit() else 0
        return Withdrawn("settled", result=Result(status, node, via, at, detail, also))
    if out[0] == "held":
        return Withdrawn("held", holder=out[1])
    return Withdrawn("withdrawn", began=Marker.parse(out[1]) if out[1] else None)
