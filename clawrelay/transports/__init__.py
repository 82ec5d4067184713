"""WHAT delivers a message: one module per transport, imported only when a chain uses it."""

from __future__ import annotations

from importlib import import_module

from clawrelay.transports.base import AttemptContext, Transport

_BUILT = {  # name → module:class
    "memory_file": "clawrelay.transports.memory_file:MemoryFile",
    "command": "clawrelay.transports.command:Command",
    "sessions_send": "clawrelay.transports.sessions_send:SessionsSend",
    "nodes_run": "clawrelay.transports.nodes_run:NodesRun",
    "agent_cli": "clawrelay.transports.agent_cli:AgentCli",
    "telegram": "clawrelay.transports.telegram.transport:Telegram",
    # an event's rungs (clawrelay.events), not chain steps of routes.yaml
    "wake": "clawrelay.transports.system_event:Wake",
    "system_event": "clawrelay.transports.system_event:SystemEvent",
}


def _class(name: str) -> type[Transport]:
    module, cls = _BUILT[name].split(":")  # the routes schema and events admit only these
    return getattr(import_module(module), cls)  # type: ignore[no-any-return]


def get_transport(name: str) -> Transport:
    return _class(name)()


def resend_window(name: str) -> float:
    """How long after an attempt of this transport started a resend is still harmless, should
    the attempt be interrupted (its sender died): 0 for never. Commands (`exec`, `sync`) never."""
    return float(getattr(_class(name), "resend_window", 0.0)) if name in _BUILT else 0.0


__all__ = ["AttemptContext", "Transport", "get_transport", "resend_window"]
