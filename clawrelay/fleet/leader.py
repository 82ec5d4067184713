"""The fleet's leader: a lease in Redis with a fencing token, and what only the leader does.

The lease is a key that expires after the ttl unless its holder renews it at each heartbeat; who
sets it when it is free gets the next number of a counter, the fencing token. Every fleet-wide
job (announcing joined and left nodes, expiring the shared outbox) runs as a script that first
checks that the lease still holds this node's token, so a leader that paused past its lease
(a stopped VM, a long GC) and wakes up believing it leads changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from clawrelay.fleet import keys, lua
from clawrelay.fleet.connect import Redis

EVENTS_KEPT = 1000


@dataclass
class Lease:
    held: bool
    token: int
    newly: bool  # taken in this round: a new leader


async def hold(redis: Redis, node: str, ttl: float, at_ms: int = 0) -> Lease:
    """Take the lease if it is free (announcing the new token in the events stream), renew it if
    it is ours; say who holds it."""
    held, token, newly = await redis.eval(
        lua.LEASE,
        4,
        keys.LEADER,
        keys.EPOCH,
        keys.YIELDED,
        keys.EVENTS,
        node,
        int(ttl * 1000),
        at_ms,
        EVENTS_KEPT,
    )
    return Lease(bool(held), int(token), bool(newly))


async def resign(redis: Redis, node: str, token: int) -> bool:
    """Give the lease up (a relay that stops), if it is still this node's."""
    return bool(await redis.eval(lua.RESIGN, 1, keys.LEADER, node, token))


async def elect(redis: Redis, heartbeat: float) -> str | None:
    """`fleet elect`: end the current lease; its holder sits out the next round. The old leader."""
    previous = await redis.eval(lua.ELECT, 2, keys.LEADER, keys.YIELDED, int(heartbeat * 1500))
    return str(previous) if previous else None


async def membership(redis: Redis, node: str, token: int, at_ms: int) -> tuple[list[str], list[str]] | None:
    """The leader's round: nodes that joined and nodes that left since the last round (None when
    this node no longer holds the lease)."""
    out = await redis.eval(
        lua.MEMBERSHIP,
        4,
        keys.LEADER,
        keys.MEMBERS,
        keys.SEEN,
        keys.EVENTS,
        node,
        token,
        at_ms,
        keys.node(""),
        EVENTS_KEPT,
    )
    if out is None or out is False:
        return None
    items = [str(x) for x in out]
    cut = items.index("")
    return sorted(items[:cut]), sorted(items[cut + 1 :])
