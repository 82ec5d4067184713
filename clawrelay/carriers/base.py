"""The one interface every carrier implements.

A carrier runs one argv on one host within a time limit and reports what happened: exit code,
whether the limit cut it, its output. It raises `TransportError` (with a stable reason) when the
command could not be started at all; a command that ran and failed is a `RunResult`, not an error.
`on_spawn` is called the moment the command has left for the host: from then on a lost answer
means it may have run, which the transports above record as ambiguous rather than failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from clawrelay.carriers.result import RunResult
from clawrelay.errors import TransportError
from clawrelay.reasons import Reason

GRACE_S = 3.0  # beyond a remote command's own limit: the round trip and the remote kill


class Carrier(Protocol):
    name: str  # "local", "ssh" or "node"
    label: str  # where, for messages: "ssh root@host:22", "node xiaom on gateway home"

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult: ...

    async def home(self) -> str:
        """The remote user's home folder, to resolve `~/…` paths that are not run by a shell."""
        ...


def under_home(path: str, home: str) -> str:
    """`~` and `~/…` as the host's home; any other path as it is (no shell expands an argv)."""
    return home + path[1:] if path == "~" or path.startswith("~/") else path


async def ask_home(carrier: Carrier) -> str:
    """The home folder of the user commands run as on that host, asked of the host itself."""
    res = await carrier.run(["printenv", "HOME"], timeout=10)
    home = res.stdout.decode().strip()
    if res.exit_code != 0 or not home:
        raise TransportError(
            f"{carrier.label}: cannot tell the home folder there", reason=Reason.REMOTE_ERROR
        )
    return home
