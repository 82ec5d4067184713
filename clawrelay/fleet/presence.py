"""Who is in the fleet: each relay's heartbeat, and the fleet as `fleet status` shows it.

A heartbeat is one key per node that expires after the ttl: the node is alive exactly while its
key exists, so no clock of any machine decides who is offline. The last heartbeat is also kept
in a hash (without expiry), so a node that went away is shown as offline, with when it was last
seen, instead of vanishing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from clawrelay.fleet import keys
from clawrelay.fleet.connect import Redis


@dataclass
class Heartbeat:
    node: str
    version: str
    pid: int
    instance: str  # this process (a relay restarted under the same name is another instance)
    outbox: int  # messages waiting in this relay's own outbox
    reach: dict[str, list[str]] = field(default_factory=dict)  # target → transports up at the last probe
    sent_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


async def beat(redis: Redis, hb: Heartbeat, ttl: float) -> str | None:
    """Say this node is alive for `ttl` more seconds. Returns the instance of another live relay
    that uses the same node name, if one does (the caller warns: two relays, one name)."""
    data = hb.to_json()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.node(hb.node), data, px=int(ttl * 1000), get=True)
        pipe.hset(keys.SEEN, hb.node, data)
        previous, _ = await pipe.execute()
    if previous:
        try:
            other = json.loads(previous).get("instance")
        except (ValueError, AttributeError):
            return None
        if other and other != hb.instance:
            return str(other)
    return None


async def leave(redis: Redis, node: str, instance: str) -> None:
    """A clean exit: the node is offline now, not after its ttl (only if the key is this relay's)."""
    if await instance_of(redis, node) == instance:
        await redis.delete(keys.node(node))


async def instance_of(redis: Redis, node: str) -> str | None:
    """The instance of the live relay called `node`, if one is alive."""
    current = await redis.get(keys.node(node))
    if current is None:
        return None
    try:
        instance = json.loads(current).get("instance")
    except (ValueError, AttributeError):
        return None
    return str(instance) if instance else None


async def view(redis: Redis, *, events: int = 10) -> dict[str, Any]:
    """The fleet now: {"leader", "token", "nodes": [...], "events": [...]}, nodes by name."""
    seen: dict[str, str] = await redis.hgetall(keys.SEEN)
    names = sorted(seen)
    alive = await redis.mget([keys.node(n) for n in names]) if names else []
    leader_value = await redis.get(keys.LEADER)
    leader, _, token = leader_value.partition(" ") if leader_value else (None, "", "")
    nodes = []
    for name, live in zip(names, alive, strict=True):
        try:
            hb = json.loads(live or seen[name])
        except ValueError:
            hb = {}
        nodes.append(
            {
                "node": name,
                "alive": live is not None,
                "last_seen_ms": hb.get("sent_ms"),
                "version": hb.get("version"),
                "pid": hb.get("pid"),
                "outbox": hb.get("outbox"),
                "reach": hb.get("reach") or {},
            }
        )
    recent = await redis.xrevrange(keys.EVENTS, count=events) if events else []
    return {
        "leader": leader,
        "token": int(token) if token.isdigit() else None,
        "nodes": nodes,
        "events": [
            {k: (int(v) if k in ("token", "at_ms") and v.isdigit() else v) for k, v in fields.items()}
            for _, fields in reversed(recent)
        ],
    }
