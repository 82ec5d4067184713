"""Every Redis key the fleet uses, in one place (docs/fleet.md lists them for operators).

All share the hash tag `{fleet}`, so a Redis Cluster keeps them in one slot: the scripts that
touch several keys at once work there too, at the price of the fleet living on one shard.
"""

from __future__ import annotations

PREFIX = "clawrelay:{fleet}:"
GROUP = "relays"  # the consumer group of every outbox stream


def node(name: str) -> str:
    """A node's presence (JSON), expiring after the ttl: it exists while the node is alive."""
    return f"{PREFIX}node:{name}"


SEEN = PREFIX + "seen"  # hash: node → JSON of its last heartbeat (kept after it expires)
MEMBERS = PREFIX + "members"  # set: the nodes the leader has announced as joined
LEADER = PREFIX + "leader"  # "NODE TOKEN", expiring after the ttl unless renewed
EPOCH = PREFIX + "epoch"  # the last fencing token handed out
YIELDED = PREFIX + "yielded"  # a leader that gave up (`fleet elect`) waits one round before retrying
EVENTS = PREFIX + "events"  # stream: joined, left, elected (capped)
STREAMS = PREFIX + "streams"  # set: every outbox stream ever offered to


def outbox(target: str) -> str:
    """The stream of messages for `target` that their senders could not deliver."""
    return f"{PREFIX}outbox:{target}"


def offered(message_id: str) -> str:
    """ "ORIGIN STREAM_ID": the message is in the shared outbox."""
    return f"{PREFIX}offered:{message_id}"


def lock(message_id: str) -> str:
    """ "NODE INSTANCE": who is delivering the message now (expires unless renewed)."""
    return f"{PREFIX}lock:{message_id}"


def attempt(message_id: str) -> str:
    """JSON {node, started_ms, plan}: an attempt began and has not been settled."""
    return f"{PREFIX}attempt:{message_id}"


def result(message_id: str) -> str:
    """Hash {status, node, via, at_ms, detail}: what came of the message (its sender reads it)."""
    return f"{PREFIX}result:{message_id}"
