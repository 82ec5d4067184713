"""WHAT delivers a message: one module per transport, imported only when a chain uses it.

Which transports exist, and what each needs, is `transports.registry`'s table of specs. Importing
this package imports only that table: config reads it while `transports.base` imports config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clawrelay.transports import registry

if TYPE_CHECKING:
    from clawrelay.transports.base import AttemptContext, Transport


def get_transport(name: str) -> Transport:
    return registry.spec(name).implementation()()


def resend_window(name: str) -> float:
    """How long after an attempt of this transport started a resend is still harmless, should
    the attempt be interrupted (its sender died): 0 for never. Commands (`exec`, `sync`) never."""
    spec = registry.find(name)
    return spec.resend_window if spec is not None else 0.0


def __getattr__(name: str) -> Any:
    if name in ("AttemptContext", "Transport"):
        from clawrelay.transports import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["AttemptContext", "Transport", "get_transport", "resend_window"]
