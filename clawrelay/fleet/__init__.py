"""The fleet: relays on several machines that share presence, a leader and an outbox in Redis.

Optional (`fleet:` in routes.yaml); without it nothing here is imported. Each machine keeps its
own journal (SQLite): Redis holds only what the relays must agree on, and every change to it that
must not be half-done is one Lua script, so a relay or Redis that dies between two commands
leaves nothing inconsistent.

- `keys`: every key, under one hash tag (a Redis Cluster puts them in one slot).
- `connect`: the redis-py asyncio client, and its failures as clawrelay's errors.
- `lua`: the scripts.
- `presence`: heartbeats with a TTL, and the fleet as `fleet status` shows it.
- `leader`: the lease with its fencing token, `fleet elect`, and the leader's jobs.
- `shared_outbox`: offering a message, claiming and delivering it, settling it at its sender.
- `member`: what `clawrelay serve` runs when the fleet is configured.
"""
