"""The user's own rung: any local program, the message on stdin.

Exit 0 is delivered; 75 (EX_TEMPFAIL, as sendmail uses it) is a failure worth retrying; any
other exit is permanent. A program still running at the timeout is killed with its process
group and recorded `ambiguous`: it had the message, and may have passed it on.
"""

from __future__ import annotations

import os

from clawrelay.carriers import local
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.reasons import Reason
from clawrelay.secrets import value_of
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.specs.command import SPEC, CommandStep

EX_TEMPFAIL = 75


class Command:
    name = SPEC.name
    resend_window = SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, CommandStep)
        ctx.carrier = "local"
        hidden = ctx.routes.secret_vars() - set(opts.env)  # the secrets it did not ask for
        res = await local.run(
            [os.path.expanduser(a) if a.startswith("~") else a for a in opts.argv],
            timeout=ctx.remaining(),
            stdin=env.body.encode("utf-8"),
            env={
                **{k: v for k, v in os.environ.items() if k not in hidden},
                # what it asked for that only the secrets file has
                **{n: v for n in opts.env if n not in os.environ and (v := value_of(n))},
                **env.env(),
            },
            on_spawn=ctx.mark_sent,
        )
        if res.timed_out:
            return StepResult.ambiguous(
                Reason.TIMEOUT,
                f"{opts.argv[0]} still running after {res.elapsed_ms} ms: killed with its group",
            )
        if res.exit_code == 0:
            return StepResult.delivered(f"{opts.argv[0]} exited 0")
        detail = f"{opts.argv[0]} exited {res.exit_code}" + (f": {t}" if (t := res.stderr_tail()) else "")
        if res.exit_code == EX_TEMPFAIL:
            return StepResult.failed(Reason.TEMPFAIL, detail, retryable=True)
        return StepResult.failed(Reason.EXIT_STATUS, detail)
