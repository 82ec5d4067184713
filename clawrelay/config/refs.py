"""Checks that need the whole file: names that must point at something, and what a step needs.

What a step needs depends on its transport: a host (`TransportSpec.host`), particular carriers
(`carriers`), or something else in the file (`check`, such as a gateway or the bot).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from clawrelay.config.model import Config, Host
from clawrelay.config.schema import SourceError
from clawrelay.transports import registry


def known(names: Iterable[str]) -> str:
    """`a, b, c` (sorted), or `none`: the names an unknown one could have been."""
    return ", ".join(sorted(names)) or "none"


def check_refs(config: Config) -> list[SourceError]:
    return list(_errors(config))


def _errors(config: Config) -> Iterator[SourceError]:
    for name, each in config.hosts.items():
        if each.node is not None and each.node.gateway not in config.gateways:
            yield SourceError(
                ("hosts", name, "node", "gateway"),
                f"unknown gateway {each.node.gateway!r} (known: {known(config.gateways)})",
            )

    seen: dict[str, str] = {}
    for name, target in config.targets.items():
        for i, key in enumerate((name, *target.aliases)):
            other = seen.setdefault(key.casefold(), name)
            if other != name:
                where: tuple[str | int, ...] = ("targets", name)
                if i > 0:
                    where = (*where, "aliases", i - 1)
                yield SourceError(where, f"{key!r} is already a name or alias of target {other}")

        host: Host | None = None
        host_name = target.host or ""
        if target.host is not None:
            host = config.hosts.get(host_name)
            if host is None:
                yield SourceError(
                    ("targets", name, "host"), f"unknown host {target.host!r} (known: {known(config.hosts)})"
                )
                continue

        for i, step in enumerate(target.chain):
            kind = step.transport
            spec = registry.spec(kind)
            loc: tuple[str | int, ...] = ("targets", name, "chain", i, kind)
            if spec.host and target.host is None:
                yield SourceError(("targets", name), f"{kind} needs the target's `host`")
                continue
            if spec.check is not None:
                for at, message in spec.check(config, name, step):
                    yield SourceError((*loc, *at), message)
            if host is not None and spec.host:
                offered = host.carriers()
                for c in spec.carriers or ():
                    if c not in offered:
                        yield SourceError(loc, f"host {target.host} has no `{c}:` to run it on")
                via = getattr(step, "via", None)
                for c in via or []:
                    if c not in offered:
                        yield SourceError(
                            (*loc, "via"),
                            f"host {target.host} has no {c} carrier (it has: {known(offered)})",
                        )
                if not via and not offered:
                    yield SourceError(
                        ("hosts", host_name), f"{kind} needs `local: true`, `ssh:` or `node:` on this host"
                    )

    for group, members in config.groups.items():
        for i, member in enumerate(members):
            if member.casefold() not in seen:
                yield SourceError(
                    ("groups", group, i), f"unknown target {member!r} (known: {known(config.targets)})"
                )

    fleet = config.fleet
    if fleet is not None:
        if fleet.notify is not None and fleet.notify.casefold() not in seen:
            yield SourceError(
                ("fleet", "notify"), f"unknown target {fleet.notify!r} (known: {known(config.targets)})"
            )
        if fleet.ttl < 2 * fleet.heartbeat:
            yield SourceError(
                ("fleet", "ttl"),
                f"a ttl of {fleet.ttl:g}s would call a node offline after one late heartbeat "
                f"({fleet.heartbeat:g}s): make it at least twice the heartbeat",
            )
