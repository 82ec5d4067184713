"""Running the target host's own `openclaw` CLI through its carriers.

Non-interactive ssh and node shells often lack a login shell's PATH, so a host says how to run
the CLI there (`openclaw:` in routes.yaml: a path or an argv prefix). `~/` in it is the remote
user's home, asked of the host itself, because no shell expands an argv.

On a node with an exec allowlist, the CLI's entry is its resolved path (a symlink such as
`/usr/local/bin/openclaw` resolves to the package's `openclaw.mjs`): `clawrelay doctor` prints it.
An `openclaw:` prefix that starts with `env VAR=…` is judged as `env` there, which no allowlist
entry lets through.
"""

from __future__ import annotations

from collections.abc import Sequence

from clawrelay.carriers.base import GRACE_S, Carrier, under_home
from clawrelay.carriers.hosts import run_first
from clawrelay.carriers.result import RunResult
from clawrelay.errors import TransportError
from clawrelay.reasons import Reason
from clawrelay.transports.base import AttemptContext


async def expand_home(argv: Sequence[str], carrier: Carrier) -> list[str]:
    if not any(a == "~" or a.startswith("~/") or "=~/" in a for a in argv):
        return list(argv)
    home = await carrier.home()
    out = []
    for a in argv:
        name, eq, value = a.partition("=")
        # VAR=~/path in an `env` prefix, or a path
        out.append(
            f"{name}={under_home(value, home)}" if eq and value.startswith("~/") else under_home(a, home)
        )
    return out


class _Prefixed:
    """A carrier that puts the host's `openclaw` prefix (with ~ expanded there) before argv."""

    def __init__(self, carrier: Carrier, prefix: Sequence[str]) -> None:
        self.carrier = carrier
        self.prefix = list(prefix)
        self.name = carrier.name
        self.label = carrier.label

    async def run(self, argv: Sequence[str], **kw) -> RunResult:  # type: ignore[no-untyped-def]
        return await self.carrier.run([*await expand_home(self.prefix, self.carrier), *argv], **kw)

    async def home(self) -> str:
        return await self.carrier.home()


async def run_openclaw(ctx: AttemptContext, args: Sequence[str]) -> RunResult:
    """`openclaw ARGS…` on the target's host, on the first of the step's carriers that starts it."""
    host = ctx.host
    assert host is not None
    carriers = [_Prefixed(c, host.openclaw) for c in ctx.carriers()]
    try:
        return await run_first(
            carriers,
            args,
            timeout=lambda: max(0.5, ctx.remaining() - GRACE_S),
            on_spawn=ctx.mark_sent,
            chosen=ctx.chose,
        )
    except TransportError as e:  # a node says so itself, where ssh's shell exits 127
        if e.reason != Reason.NOT_FOUND or not e.message.endswith("command not found"):
            raise
        raise TransportError(
            f"{e.message} (set the host's `openclaw:` to the CLI's path there)", reason=Reason.NOT_FOUND
        ) from e
