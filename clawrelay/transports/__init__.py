"""WHAT delivers a message: one module per transport, imported only when a chain uses it."""

from __future__ import annotations

from importlib import import_module

from clawrelay.transports.base import AttemptContext, Transport

_BUILT = {
    "memory_file": "clawrelay.transports.memory_file:MemoryFile",
    "command": "clawrelay.transports.command:Command",
    "sessions_send": "clawrelay.transports.sessions_send:SessionsSend",
    "nodes_run": "clawrelay.transports.nodes_run:NodesRun",
    "agent_cli": "clawrelay.transports.agent_cli:AgentCli",
    "telegram": "clawrelay.transports.telegram.transport:Telegram",
}


def get_transport(name: str) -> Transport:
    spec = _BUILT.get(name)
    if spec is None:
        from clawrelay.transports.unavailable import NotAvailable

        return NotAvailable(name)
    module, cls = spec.split(":")
    return getattr(import_module(module), cls)()


__all__ = ["AttemptContext", "Transport", "get_transport"]
