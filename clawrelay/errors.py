"""Typed errors with stable reason codes.

Every error a user can see carries a `reason` that scripts may match on (it never changes
between releases) and an `exit_code` the CLI returns. Messages are one line and never hold a
secret: callers pass them through `secrets.scrub` before they are built.
"""

from __future__ import annotations

from clawrelay.reasons import Reason

__all__ = [
    "LOST_IN_FLIGHT",
    "ClawrelayError",
    "ConfigError",
    "HopLimit",
    "Reason",
    "StateError",
    "TransportError",
    "UnknownTarget",
    "UsageError",
]


class ClawrelayError(Exception):
    reason: str = Reason.ERROR
    exit_code: int = 1
    # the exact command (or edit) that fixes it, set where it is known, so doctor never has to
    # read it back out of the message
    fix: str | None = None

    def __init__(self, message: str, *, reason: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if fix is not None:
            self.fix = fix

    @property
    def message(self) -> str:
        return str(self)


class UsageError(ClawrelayError):
    reason = Reason.USAGE
    exit_code = 2


class ConfigError(ClawrelayError):
    """A routes.yaml that cannot be used. `where` is `file:line` when the line is known."""

    reason = Reason.CONFIG
    exit_code = 2


class StateError(ClawrelayError):
    """The journal or state dir cannot be used: nothing was accepted, so nothing is lost."""

    reason = Reason.STATE_UNAVAILABLE
    exit_code = 2


class UnknownTarget(ClawrelayError):
    reason = Reason.UNKNOWN_TARGET
    exit_code = 3


class HopLimit(ClawrelayError):
    """A message relayed more times than `defaults.max_hops` allows: refused, never journaled."""

    reason = Reason.HOP_LIMIT
    exit_code = 2


# A request that had left when these happened may have been carried out: ambiguous, not failed.
LOST_IN_FLIGHT = frozenset({Reason.CONNECTION_LOST, Reason.GATEWAY_RESTARTING})


class TransportError(ClawrelayError):
    """Raised inside a transport or carrier; the router turns it into a `failed` attempt."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool = False,
        retry_after: float | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, fix=fix)
        self.retryable = retryable
        self.retry_after = retry_after
