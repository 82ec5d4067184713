"""The OpenClaw gateway, spoken natively: WebSocket client, device identity, errors, connection pool."""

from clawrelay.openclaw.client import ALL_SCOPES, READ, WRITE, Call, GatewayClient
from clawrelay.openclaw.errors import GatewayError
from clawrelay.openclaw.pool import GatewayPool, open_gateway

__all__ = [
    "ALL_SCOPES",
    "READ",
    "WRITE",
    "Call",
    "GatewayClient",
    "GatewayError",
    "GatewayPool",
    "open_gateway",
]
