"""What running one argv on a host came to, whichever carrier ran it."""

from __future__ import annotations

from dataclasses import dataclass

TIMEOUT_EXIT = 124  # as timeout(1) reports it, on every carrier


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    timed_out: bool
    stdout: bytes
    stderr: bytes
    elapsed_ms: int

    def stderr_tail(self, limit: int = 300) -> str:
        text = (self.stderr or self.stdout).decode("utf-8", "replace")
        text = " ".join(text.split())
        return text if len(text) <= limit else "…" + text[-limit:]
