"""command: the user's own program, the message on stdin (`transports.command`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec
from msgspec import Meta

from clawrelay.config.model import StepBase
from clawrelay.config.schema import Check
from clawrelay.errors import ClawrelayError
from clawrelay.reasons import Reason
from clawrelay.secrets import REF
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


def _variable_names(v: list[str]) -> list[str]:
    for name in v:
        if not REF.fullmatch(f"${{{name}}}"):
            raise ValueError(f"{name!r} is not an environment variable name")
    return v


class CommandStep(StepBase, frozen=True, kw_only=True):
    transport: ClassVar[str] = "command"
    argv: Annotated[list[str], Meta(min_length=1)]
    # variables routes.yaml treats as secrets (and OPENCLAW_GATEWAY_TOKEN) that the program may
    # still inherit; every other variable it inherits anyway, so naming one here is harmless
    env: Annotated[list[str], Check(_variable_names)] = msgspec.field(default_factory=list)


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    opts = step.options
    assert isinstance(opts, CommandStep)
    argv0 = opts.argv[0]
    path = Path(argv0).expanduser()
    found = shutil.which(argv0) if "/" not in argv0 else (str(path) if path.is_file() else None)
    if found is None:
        raise ClawrelayError(
            f"{argv0} is not found (PATH, or that path)",
            reason=Reason.NOT_FOUND,
            fix="install it, or give its full path as argv[0]",
        )
    return f"{found} found"


SPEC = TransportSpec(options=CommandStep, impl="clawrelay.transports.command:Command", probe=_probe)
