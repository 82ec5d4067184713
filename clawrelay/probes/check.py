"""A probe's answer as one line (of `clawrelay doctor`, `status`, `service status`): what was
checked, OK or what is wrong, and the command that fixes it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import asdict, dataclass

from clawrelay.errors import ClawrelayError
from clawrelay.reasons import Reason


@dataclass(frozen=True)
class Check:
    subject: str  # "config", "proxies", or a target name
    ok: bool
    detail: str
    step: int | None = None
    transport: str | None = None
    reason: str | None = None  # the stable reason code of what is wrong
    fix: str | None = None  # the exact command (or edit) that fixes it

    def __post_init__(self) -> None:
        if not self.ok and not self.fix:  # every FAIL line has its fix
            object.__setattr__(self, "fix", fallback_fix(self.reason))

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        what = self.subject if self.step is None else f"{self.subject} {self.step} {self.transport}"
        status = "ok" if self.ok else "FAIL"
        reason = f" ({self.reason})" if self.reason and not self.ok else ""
        out = [f"{status:<5} {what:<28} {self.detail}{reason}"]
        if self.fix:  # several commands: one `fix:` line each
            out.extend(f"{'':<34} fix: {line}" for line in self.fix.splitlines())
        return out


def fallback_fix(reason: str | None) -> str:
    """The fix of a failure no probe knew a better one for: what to do next, by its reason."""
    fixes: dict[str, str] = {
        Reason.CONFIG: "correct routes.yaml where the message says (clawrelay routes check lists every "
        "error; docs/configuration.md has every key)",
        Reason.TIMEOUT: "clawrelay doctor --timeout 30s waits longer; no answer then: that machine or "
        "service is down, or not reachable from here",
        Reason.INTERNAL_ERROR: "CLAWRELAY_LOG=debug clawrelay doctor shows where: a bug in clawrelay, "
        "please report it",
    }
    meaning = f"docs/troubleshooting.md: what reason `{reason or Reason.ERROR}` means and its fix"
    return fixes.get(reason or "", meaning)


async def run_check(
    subject: str,
    probe: Awaitable[str],
    *,
    step: int | None = None,
    transport: str | None = None,
    timeout: float | None = None,
) -> Check:
    """One probe's answer as a Check: ok with its detail, or what is wrong and the fix; with a
    `timeout`, "no answer" once it has passed (status waits for nobody)."""
    try:
        async with asyncio.timeout(timeout):
            return Check(subject, True, await probe, step, transport)
    except TimeoutError:
        return Check(subject, False, f"no answer within {timeout:g}s", step, transport, Reason.TIMEOUT)
    except ClawrelayError as e:  # what is wrong, and its fix where the probe or the raiser knew it
        return Check(subject, False, e.message, step, transport, e.reason, e.fix)
    except Exception as e:  # a bug in a probe must not hide every other line
        return Check(subject, False, f"{e.__class__.__name__}: {e}", step, transport, Reason.INTERNAL_ERROR)
