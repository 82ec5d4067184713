"""HOW a command reaches a host: run an argv there under a deadline and say exactly what happened.

`local` is this machine; `ssh` and `node` (through a gateway's node.invoke) follow. Transports
and commands that run programs use carriers, so timeouts and kill-on-deadline live in one place.
"""

from clawrelay.carriers.result import RunResult

__all__ = ["RunResult"]
