"""Which flusher `service install` would put in place, and everything it would write, run and ask
for, decided before anything is touched: `--dry-run` prints exactly this, and a refusal (another
kind installed, a supervisor this machine lacks) comes before any step.

Which kind: macOS → a launchd agent; Linux with a systemd user manager (`systemctl --user`
answers) → a systemd user unit; anywhere else → an OpenClaw cron job on the gateway that runs on
this machine. `--kind` forces one. Each kind is a module with the same six functions
(`Supervisor`), so `plan` and `install` ask them alike.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clawrelay import paths
from clawrelay.errors import ClawrelayError, Reason, UsageError
from clawrelay.service import cron, launchd, state, systemd, units
from clawrelay.service.host import Say

KINDS = ("systemd", "launchd", "cron")


@dataclass
class Plan:
    """What `install` writes, runs and asks the gateway for (all of it shown by --dry-run)."""

    kind: str
    interval_s: float
    argv: list[str]
    env: dict[str, str]
    files: list[tuple[Path, bytes]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    rpc: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gateway: str | None = None
    url: str | None = None
    config: str | None = None  # --config as given: the gateway's token is resolved through it
    notes: list[str] = field(default_factory=list)

    def to_json(self, *, dry_run: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "interval_s": self.interval_s,
            "argv": self.argv,
            "env": self.env,
            "dry_run": dry_run,
            "notes": self.notes,
        }
        out["files"] = [
            {"path": str(p), **({"content": c.decode()} if dry_run else {})} for p, c in self.files
        ]
        out["commands"] = self.commands
        if self.kind == "cron":
            out["gateway"] = self.gateway
            out["rpc"] = [{"method": m, "params": p} for m, p in self.rpc] if dry_run else None
        return out


class Supervisor(Protocol):
    """One kind of flusher. `record` is what `service.json` holds of it; `config` is --config as
    given, for the gateway's token."""

    def require(self) -> None:
        """Refuse a forced --kind this machine has no supervisor for."""

    def fill(self, p: Plan, *, gateway: str | None, before: dict[str, Any] | None) -> None:
        """Add this kind's files, commands or gateway requests to the plan."""

    def install(self, p: Plan, record: dict[str, Any], say: Say) -> None:
        """Carry out the plan, adding to `record` and saving it as soon as there is something to undo."""

    def active(self, record: dict[str, Any], config: str | None, timeout: float) -> tuple[bool | None, str]:
        """Whether the supervisor runs or schedules it (None: could not tell), in its own words."""

    def removal(self, record: dict[str, Any]) -> str:
        """What `remove` would do, for `uninstall --dry-run`."""

    def remove(self, record: dict[str, Any], config: str | None, say: Say) -> None:
        """Stop it and take away what `install` put in place."""


SUPERVISORS: dict[str, Supervisor] = {"systemd": systemd, "launchd": launchd, "cron": cron}


def supervisor(kind: str) -> Supervisor:
    try:
        return SUPERVISORS[kind]
    except KeyError:
        raise ClawrelayError(f"service.json names an unknown kind {kind!r}", reason=Reason.ERROR) from None


def detect() -> str:
    if sys.platform == "darwin":
        return "launchd"
    return "systemd" if systemd.available() else "cron"


def config_arg(config: str | None) -> str:
    """The routes file in use, absolute (`builtin` for the embedded demo)."""
    from clawrelay.config.loader import BUILTIN, find_config

    path = find_config(config)
    return str(path.resolve()) if path is not None else BUILTIN


def plan(
    kind: str | None,
    config: str | None,
    interval_s: float | None,
    gateway: str | None,
    *,
    dry_run: bool = False,
) -> Plan:
    """What installing `kind` (else the kind this machine has) would do; refused when another kind
    is installed, or (unless it is only a dry run) when this machine lacks the forced kind's
    supervisor."""

    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    check = kind is not None and not dry_run  # a kind detected is one this machine has
    kind = kind or detect()
    before = state.read_installed()
    if before is not None and before["kind"] != kind:
        raise UsageError(
            f"a {before['kind']} flusher is installed already: `clawrelay service uninstall` first"
        )
    if check:
        supervisor(kind).require()
    if gateway is not None and kind != "cron":
        raise UsageError(f"--gateway is for the cron kind; this one is {kind}")
    home = paths.state_dir()
    exe, cfg = paths.this_program(), config_arg(config)
    watch = kind != "cron"
    interval = interval_s or (units.WATCH_INTERVAL if watch else units.CRON_INTERVAL)
    if not watch and interval < 60:
        raise UsageError("--interval: a cron job runs at most once a minute; give 1m or more")
    argv = units.flusher_argv(exe, cfg, watch=watch, interval_s=interval)
    env = units.flusher_env(kind, home, _path_var() if watch else None)
    p = Plan(kind, interval, argv, env, config=config)
    supervisor(kind).fill(p, gateway=gateway, before=before)
    if cfg != "builtin":
        p.notes += _secret_notes(config)
    return p


def _path_var() -> str:
    """This shell's PATH, absolute entries only: what `command` steps and `openclaw` are found on."""
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p.startswith("/"))


def _secret_notes(config: str | None) -> list[str]:
    from clawrelay.config import load_routes

    try:
        routes = load_routes(config)
    except ClawrelayError:
        return []
    here = sorted(v for v in routes.secret_vars() if os.environ.get(v))
    if not here:
        return []
    names = ", ".join(f"${v}" for v in here)
    return [
        f"{names} {'is' if len(here) == 1 else 'are'} set in this shell, whose environment the "
        "flusher does not get: keep secrets in routes.yaml's `secrets:` file (mode 0600)"
    ]
