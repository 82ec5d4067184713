"""`clawrelay service install|status|uninstall`: put a flusher in place where this machine has a
supervisor, say how it is doing, take it away.

What was installed is recorded in the state dir (`service.json`): `uninstall` removes exactly
that, and a second `install` converges on it (one unit, one job). Deciding what to install is
`plan`'s; each kind's own steps are its module's (`systemd`, `launchd`, `cron`).
"""

from __future__ import annotations

import time
from typing import Any

from clawrelay.errors import ClawrelayError
from clawrelay.service import state
from clawrelay.service.host import Say
from clawrelay.service.plan import Plan, plan, supervisor

__all__ = ["Plan", "install", "plan", "status", "uninstall"]


def install(p: Plan, say: Say) -> dict[str, Any]:
    """Carry out the plan; `say(line)` reports each step. The record written to `service.json`."""
    record: dict[str, Any] = {
        "kind": p.kind,
        "interval_s": p.interval_s,
        "argv": p.argv,
        "installed_ms": time.time_ns() // 1_000_000,
    }
    supervisor(p.kind).install(p, record, say)
    state.save_installed(record)
    return record


def status(config: str | None, timeout: float) -> dict[str, Any]:
    """The flusher as `service status` shows it: installed kind, whether its supervisor runs or
    schedules it, the last pass, the outbox, and the verdict `send` uses (`flusher_running`)."""
    look = state.look()
    out = look.to_json()
    record = look.installed
    out["kind"] = record["kind"] if record else None
    out["active"], out["active_detail"] = None, None
    if record is not None:
        try:
            out["active"], out["active_detail"] = supervisor(record["kind"]).active(record, config, timeout)
        except ClawrelayError as e:
            out["active_detail"] = e.message
    try:
        out["outbox"] = state.outbox_depth()
    except ClawrelayError as e:
        out["outbox"] = {"error": e.message}
    return out


def uninstall(config: str | None, say: Say, *, dry_run: bool = False) -> dict[str, Any] | None:
    """Remove what `install` recorded, and the record. None when nothing was installed."""
    record = state.read_installed()
    if record is None:
        return None
    kind = supervisor(record["kind"])
    if dry_run:
        say(f"would {kind.removal(record)}")
        return record
    kind.remove(record, config, say)
    state.forget_installed()
    return record
