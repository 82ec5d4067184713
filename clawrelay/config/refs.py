"""Checks that need the whole file: names that must point at something, and what a step needs."""

from __future__ import annotations

from collections.abc import Iterator

from clawrelay.config.model import HOST_STEPS, Config, SessionsSendStep
from clawrelay.config.yamlsrc import SourceError


def _known(names: object) -> str:
    return ", ".join(sorted(names)) or "none"  # type: ignore[call-overload]


def check_refs(config: Config) -> list[SourceError]:
    return list(_errors(config))


def _errors(config: Config) -> Iterator[SourceError]:
    for name, host in config.hosts.items():
        if host.node is not None and host.node.gateway not in config.gateways:
            yield SourceError(
                ("hosts", name, "node", "gateway"),
                f"unknown gateway {host.node.gateway!r} (known: {_known(config.gateways)})",
            )

    seen: dict[str, str] = {}
    for name, target in config.targets.items():
        for i, key in enumerate((name, *target.aliases)):
            other = seen.setdefault(key.casefold(), name)
            if other != name:
                loc = ("targets", name) if i == 0 else ("targets", name, "aliases", i - 1)
                yield SourceError(loc, f"{key!r} is already a name or alias of target {other}")

        host = None
        if target.host is not None:
            host = config.hosts.get(target.host)
            if host is None:
                yield SourceError(
                    ("targets", name, "host"), f"unknown host {target.host!r} (known: {_known(config.hosts)})"
                )
                continue

        for i, step in enumerate(target.chain):
            kind = step.transport
            loc = ("targets", name, "chain", i, kind)
            if kind in HOST_STEPS and target.host is None:
                yield SourceError(("targets", name), f"{kind} needs the target's `host`")
                continue
            if isinstance(step, SessionsSendStep):
                gw = step.gateway
                if gw is None and not (host and host.node) and len(config.gateways) != 1:
                    yield SourceError(loc, "name the `gateway` (the target's host has no node gateway)")
                elif gw is not None and gw not in config.gateways:
                    yield SourceError(
                        (*loc, "gateway"), f"unknown gateway {gw!r} (known: {_known(config.gateways)})"
                    )
            if kind == "telegram" and config.telegram is None:
                yield SourceError(
                    loc, 'needs the bot: a top-level `telegram: {token: "${TELEGRAM_BOT_TOKEN}"}`'
                )
            if kind == "nodes_run" and host is not None and host.node is None:
                yield SourceError(loc, f"host {target.host} has no `node:` to run it on")
            via = getattr(step, "via", None)
            if host is not None and kind in HOST_STEPS:
                offered = host.carriers()
                for c in via or []:
                    if c not in offered:
                        yield SourceError(
                            (*loc, "via"),
                            f"host {target.host} has no {c} carrier (it has: {_known(offered)})",
                        )
                if not via and not offered:
                    yield SourceError(
                        ("hosts", target.host), f"{kind} needs `local: true`, `ssh:` or `node:` on this host"
                    )

    for group, members in config.groups.items():
        for i, member in enumerate(members):
            if member.casefold() not in seen:
                yield SourceError(
                    ("groups", group, i), f"unknown target {member!r} (known: {_known(config.targets)})"
                )
