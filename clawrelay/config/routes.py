"""The loaded routes as the rest of clawrelay uses them: names resolved, step settings merged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clawrelay.config.durations import format_duration
from clawrelay.config.model import Config, Host, StepBase, Target
from clawrelay.config.schema import dump
from clawrelay.errors import ConfigError, UnknownTarget, UsageError
from clawrelay.transports import registry

if TYPE_CHECKING:
    from clawrelay.secrets_file import SecretsFile
    from clawrelay.transports.specs.sessions_send import SessionsSendStep


@dataclass(frozen=True)
class PlannedStep:
    """One rung of a chain with its effective settings (step, else target, else defaults)."""

    index: int
    transport: str
    options: StepBase
    timeout: float
    retries: int
    on_ambiguous: str
    carriers: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "step": self.index,
            "transport": self.transport,
            "carriers": list(self.carriers),
            "timeout_s": self.timeout,
            "retries": self.retries,
            "on_ambiguous": self.on_ambiguous,
        }


class Routes:
    def __init__(
        self, config: Config, source: str, path: Path | None = None, secrets_file: SecretsFile | None = None
    ) -> None:
        self.config = config
        self.source = source
        self.path = path
        self.secrets_file = secrets_file  # what `secrets:` names, read (None: no `secrets:` key)
        self._names: dict[str, str] = {}
        for name, target in config.targets.items():
            for key in (name, *target.aliases):
                self._names.setdefault(key.casefold(), name)

    @property
    def self_name(self) -> str:
        return self.config.self_

    def resolve(self, name: str) -> str:
        """A target name or alias (any case) → the target's name."""
        found = self._names.get(name.strip().casefold())
        if found is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            shown = name if len(name) <= 60 else name[:57] + "…"
            raise UnknownTarget(f"unknown target {shown!r} (known: {known}; groups start with @)")
        return found

    def expand(self, spec: str) -> list[str]:
        """`name`, `alias`, `@group` or `a,b,c` → target names, in order, without repeats."""
        out: list[str] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if part.startswith("@"):
                members = self.config.groups.get(part[1:])
                if members is None:
                    known = ", ".join("@" + g for g in sorted(self.config.groups)) or "none"
                    shown = part if len(part) <= 60 else part[:57] + "…"
                    raise UnknownTarget(f"unknown group {shown!r} (known: {known})")
                names = [self.resolve(m) for m in members]
            else:
                names = [self.resolve(part)]
            out.extend(n for n in names if n not in out)
        if not out:
            raise UsageError("no target given")
        return out

    def target(self, name: str) -> Target:
        return self.config.targets[name]

    def host_of(self, name: str) -> Host | None:
        host = self.config.targets[name].host
        return self.config.hosts[host] if host else None

    def reveal_secrets(self) -> None:
        """Read every configured secret that is set (and OpenClaw's token variable) so `scrub`
        masks them from the start, before anything uses them: a command line or a label that
        happens to hold one is recorded masked."""
        from clawrelay.secrets import TOKEN_ENV, value_of

        value_of(TOKEN_ENV)
        bot = self.config.telegram
        for secret in [gw.token for gw in self.config.gateways.values()] + [bot.token if bot else None]:
            if secret is not None and secret.available():
                secret.reveal()

    def secret_vars(self) -> set[str]:
        """The environment variables holding secrets: every `${VAR}` of a gateway's or the bot's
        `token` and of the bot's `proxy`, and OpenClaw's token variable. A program clawrelay runs
        for a `command` step gets none of them unless its step names them in `env:`."""
        from clawrelay.secrets import TOKEN_ENV

        return {TOKEN_ENV} | set(self.secret_refs())

    def secret_refs(self) -> dict[str, list[str]]:
        """Each variable a secret is read from → the keys reading it, in the file's order: the
        `${VAR}` of a gateway's or the bot's `token` and of the bot's `proxy`, and OpenClaw's
        token variable for a gateway without a `token` key (`gateways.NAME (no token key)`)."""
        from clawrelay.secrets import REF, TOKEN_ENV

        refs: dict[str, list[str]] = {}
        for name, gw in self.config.gateways.items():
            if gw.token is None:
                refs.setdefault(TOKEN_ENV, []).append(f"gateways.{name} (no token key)")
            elif gw.token.ref:
                refs.setdefault(gw.token.ref, []).append(f"gateways.{name}.token")
        bot = self.config.telegram
        if bot is not None:
            if bot.token.ref:
                refs.setdefault(bot.token.ref, []).append("telegram.token")
            for var in dict.fromkeys(REF.findall(bot.proxy or "")):
                refs.setdefault(var, []).append("telegram.proxy")
        return refs

    def session_step(self, name: str) -> SessionsSendStep | None:
        """The target's sessions_send step: where its session lives (events and wakes go there)."""
        from clawrelay.transports.specs.sessions_send import SessionsSendStep

        return next((s for s in self.config.targets[name].chain if isinstance(s, SessionsSendStep)), None)

    def gateway_of(self, name: str, named: str | None = None) -> str:
        """The gateway a step of this target uses: the one it names, else the host's node
        gateway, else the only one configured (config.refs rejects chains where none applies)."""
        gateways = self.config.gateways
        host = self.host_of(name)
        if named is None and host is not None and host.node is not None:
            named = host.node.gateway
        if named is None and len(gateways) == 1:
            named = next(iter(gateways))
        if named is None or named not in gateways:
            raise ConfigError(f"target {name}: no gateway to use")
        return named

    def deadline(self, name: str) -> float:
        return self.config.targets[name].deadline or self.config.defaults.deadline

    def resolved(self) -> dict[str, object]:
        """The routes as `routes show` prints them: every step with its effective settings."""
        data: dict[str, object] = dump(self.config)
        targets: dict[str, dict[str, object]] = data["targets"]  # type: ignore[assignment]
        for name, target in targets.items():
            chain = []
            for step in self.plan(name):
                opts: dict[str, object] = dump(step.options)
                opts.update(
                    timeout=format_duration(step.timeout),
                    retries=step.retries,
                    on_ambiguous=step.on_ambiguous,
                )
                if step.carriers:
                    opts["via"] = list(step.carriers)
                chain.append({step.transport: opts})
            target["chain"] = chain
            target["deadline"] = format_duration(self.deadline(name))
        return data

    def plan(self, name: str, via: str | None = None) -> list[PlannedStep]:
        target = self.config.targets[name]
        defaults = self.config.defaults
        host = self.host_of(name)
        steps = []
        for i, step in enumerate(target.chain, 1):
            if via is not None and step.transport != via:
                continue
            steps.append(
                PlannedStep(
                    index=i,
                    transport=step.transport,
                    options=step,
                    timeout=step.timeout or defaults.timeout,
                    retries=defaults.retries if step.retries is None else step.retries,
                    on_ambiguous=step.on_ambiguous or target.on_ambiguous or defaults.on_ambiguous,
                    carriers=registry.spec(step.transport).carriers_for(step, host),
                )
            )
        if via is not None and not steps:
            chain = ", ".join(s.transport for s in target.chain)
            raise UsageError(f"target {name} has no {via} step (its chain: {chain})")
        return steps
