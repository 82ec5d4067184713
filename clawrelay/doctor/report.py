"""One line of `clawrelay doctor`: what was checked, OK or what is wrong, and the command that fixes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    subject: str  # "config", "proxies", or a target name
    ok: bool
    detail: str
    step: int | None = None
    transport: str | None = None
    reason: str | None = None  # the stable reason code of what is wrong
    fix: str | None = None  # the exact command (or edit) that fixes it

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        what = self.subject if self.step is None else f"{self.subject} {self.step} {self.transport}"
        status = "ok" if self.ok else "FAIL"
        reason = f" ({self.reason})" if self.reason and not self.ok else ""
        out = [f"{status:<5} {what:<28} {self.detail}{reason}"]
        if self.fix:
            out.append(f"{'':<34} fix: {self.fix}")
        return out


class Broken(Exception):
    """A probe found something wrong: its reason, and the fix when there is one."""

    def __init__(self, detail: str, reason: str, fix: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.reason, self.fix = detail, reason, fix
