"""Every transport clawrelay knows, in one table: a new transport is its module and one line here.

Each line names the module whose `SPEC` (a `transports.spec.TransportSpec`) describes the
transport. A module is imported the first time its transport is looked up, so loading a config
imports the specs of the transports it names, and `--help` imports none. The order of the chain
transports is the order an `unknown transport` error lists them in.

The module of a new transport holds its options (a `config.model.StepBase` subclass whose
`transport` is its name), its class (`deliver(env, ctx) -> StepResult`) and
`SPEC = TransportSpec(options=…, impl="that.module:Class", host=…, probe=…)`. Where delivering
needs heavy imports, they go inside the class's methods, or the class into a module of its own
(as the built-in ones are, under `transports.specs`), since config imports the spec's module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clawrelay.transports.spec import TransportSpec

_TABLE: dict[str, str | TransportSpec] = {
    "sessions_send": "clawrelay.transports.specs.sessions_send",
    "nodes_run": "clawrelay.transports.specs.nodes_run",
    "agent_cli": "clawrelay.transports.specs.agent_cli",
    "memory_file": "clawrelay.transports.specs.memory_file",
    "telegram": "clawrelay.transports.specs.telegram",
    "command": "clawrelay.transports.specs.command",
    # an event's rungs (clawrelay.events), not chain steps of routes.yaml
    "wake": "clawrelay.transports.specs.wake",
    "system_event": "clawrelay.transports.specs.system_event",
}


def find(name: str) -> TransportSpec | None:
    entry = _TABLE.get(name)
    if isinstance(entry, str):
        entry = _TABLE[name] = import_module(entry).SPEC
    return entry


def spec(name: str) -> TransportSpec:
    found = find(name)
    if found is None:
        raise LookupError(f"no transport {name!r} (known: {', '.join(_TABLE)})")
    return found


def specs() -> list[TransportSpec]:
    """Every transport's spec, in the table's order (each spec module imported)."""
    return [spec(name) for name in list(_TABLE)]


def chain_names() -> list[str]:
    """The transports a chain step of routes.yaml may name."""
    return [s.name for s in specs() if s.in_routes]


def register(new: TransportSpec) -> None:
    """Add (or replace) a transport at run time, as tests do; built-in ones belong in `_TABLE`."""
    _TABLE[new.name] = new


def unregister(name: str) -> None:
    _TABLE.pop(name, None)
