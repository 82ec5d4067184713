"""Gateway failures as typed errors with stable reasons, from what the gateway actually sends.

The reason decides what the router does: `connection_refused`, `handshake_timeout`,
`unavailable` and `gateway_restarting` are worth a retry; `auth`, `pairing_required`,
`protocol_mismatch`, `missing_scope`, `unknown_method` and `not_found` are not, and each message
says what to do about it.
"""

from __future__ import annotations

from typing import Any

from clawrelay.errors import TransportError
from clawrelay.reasons import Reason

RETRYABLE = frozenset(
    {
        Reason.CONNECTION_REFUSED,
        Reason.UNREACHABLE,
        Reason.HANDSHAKE_TIMEOUT,
        Reason.UNAVAILABLE,
        Reason.GATEWAY_RESTARTING,
        Reason.CONNECTION_LOST,
    }
)


class GatewayError(TransportError):
    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retry_after: float | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retryable=reason in RETRYABLE, retry_after=retry_after)
        self.code = code
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.code:
            out["code"] = self.code
        if self.details:
            out["details"] = self.details
        if self.retry_after is not None:
            out["retryAfterMs"] = int(self.retry_after * 1000)
        return out


def from_frame(error: object, gateway: str) -> GatewayError:
    """A `res` frame's `error` object → a GatewayError with the right reason and advice."""
    # not the protocol's shape: keep what it said, as text
    frame: dict[str, Any] = error if isinstance(error, dict) else {"message": str(error)[:200]}
    code = str(frame.get("code") or "")
    message = str(frame.get("message") or code or "gateway error")
    raw = frame.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    detail_code = str(details.get("code") or "")
    after = frame.get("retryAfterMs")
    retry_after = float(after) / 1000 if isinstance(after, int | float) else None
    lower = message.lower()

    def err(reason: str, text: str) -> GatewayError:
        return GatewayError(
            f"{gateway}: {text}", reason=reason, retry_after=retry_after, code=code, details=details
        )

    if detail_code.startswith("AUTH_") or lower.startswith("unauthorized"):
        return err(
            Reason.AUTH,
            f"{message} — check the gateway token (routes.yaml `token:` or OPENCLAW_GATEWAY_TOKEN)",
        )
    if detail_code == "PAIRING_REQUIRED" or (code == "NOT_PAIRED" and details.get("requestId")):
        rid = details.get("requestId", "<requestId>")
        return err(
            Reason.PAIRING_REQUIRED,
            f"this clawrelay device is not paired yet; on the gateway's "
            f"machine run: openclaw devices approve {rid}",
        )
    if code == "NOT_PAIRED":
        return err(Reason.PAIRING_REQUIRED, message)
    if detail_code.startswith("DEVICE_AUTH"):
        return err(Reason.AUTH, f"device identity refused: {message}")
    if detail_code == "PROTOCOL_MISMATCH":
        return err(
            Reason.PROTOCOL_MISMATCH,
            f"{message}: the gateway speaks protocol {details.get('expectedProtocol')}, clawrelay 3..4",
        )
    if detail_code == "MISSING_SCOPE" or "missing scope" in lower:
        return err(Reason.MISSING_SCOPE, message)
    if lower.startswith("unknown method"):
        return err(Reason.UNKNOWN_METHOD, message)
    if code == "UNAVAILABLE":
        return err(Reason.UNAVAILABLE, message)
    if "not found" in lower or "no longer exists" in lower or "unknown session" in lower:
        return err(Reason.NOT_FOUND, message)
    if code == "FORBIDDEN":
        return err(Reason.FORBIDDEN, message)
    return err(Reason.REJECTED, message)


def from_close(code: int | None, reason: str, gateway: str, *, during: str) -> GatewayError:
    """The socket closed under us. 1012 is a restart; 1013 a gateway still starting."""
    text = f"{gateway}: connection closed{' ' + str(code) if code else ''}{': ' + reason if reason else ''}"
    if code == 1012:
        return GatewayError(
            f"{text} (gateway restarting) during {during}", reason=Reason.GATEWAY_RESTARTING, retry_after=1.0
        )
    if code == 1013:
        return GatewayError(
            f"{text} (gateway starting) during {during}", reason=Reason.UNAVAILABLE, retry_after=1.0
        )
    if code == 1008 and reason.lower().startswith("unauthorized"):
        return GatewayError(text, reason=Reason.AUTH)
    if code == 1002:
        return GatewayError(text, reason=Reason.PROTOCOL_MISMATCH)
    return GatewayError(f"{text} during {during}", reason=Reason.CONNECTION_LOST)
