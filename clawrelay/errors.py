"""Typed errors with stable reason codes.

Every error a user can see carries a `reason` that scripts may match on (it never changes
between releases) and an `exit_code` the CLI returns. Messages are one line and never hold a
secret: callers pass them through `secrets.scrub` before they are built.
"""

from __future__ import annotations


class ClawrelayError(Exception):
    reason: str = "error"
    exit_code: int = 1

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class UsageError(ClawrelayError):
    reason = "usage"
    exit_code = 2


class ConfigError(ClawrelayError):
    """A routes.yaml that cannot be used. `where` is `file:line` when the line is known."""

    reason = "config"
    exit_code = 2


class StateError(ClawrelayError):
    """The journal or state dir cannot be used: nothing was accepted, so nothing is lost."""

    reason = "state_unavailable"
    exit_code = 2


class UnknownTarget(ClawrelayError):
    reason = "unknown_target"
    exit_code = 3


class HopLimit(ClawrelayError):
    """A message relayed more times than `defaults.max_hops` allows: refused, never journaled."""

    reason = "hop_limit"
    exit_code = 2


# A request that had left when these happened may have been carried out: ambiguous, not failed.
LOST_IN_FLIGHT = frozenset({"connection_lost", "gateway_restarting"})


class TransportError(ClawrelayError):
    """Raised inside a transport or carrier; the router turns it into a `failed` attempt."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.retryable = retryable
        self.retry_after = retry_after
