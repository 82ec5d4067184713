"""Gateway connections for one clawrelay process: opened on first use, shared, closed at the end.

A group send, an outbox retry of many messages, or a chain whose steps share a gateway all reuse
one authenticated connection per gateway; a connection the gateway closed (a restart) is
replaced on the next use. This is also where the credentials for a given token are chosen: a
device identity goes along wherever the gateway needs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from clawrelay.openclaw.client import READ, WRITE, GatewayClient, is_loopback
from clawrelay.openclaw.errors import GatewayError
from clawrelay.reasons import Reason
from clawrelay.secrets import remember


async def open_gateway(
    url: str,
    *,
    name: str,
    token: str | None,
    home: Path,
    scopes: tuple[str, ...] = (READ, WRITE),
    timeout: float = 10.0,
) -> GatewayClient:
    """Connect and authenticate, choosing credentials the way this gateway wants them.

    On loopback with a token a plain token connect keeps its scopes, and skips the key. Elsewhere,
    or when the gateway asks for it, a signed device block goes along (v3; v2 for gateways that
    reject v3, remembered), and a deviceToken it issues is kept for next time.
    """
    from clawrelay.openclaw.device import DeviceIdentity

    remember(token)
    deadline = time.monotonic() + timeout
    use_device = not (token and is_loopback(url))
    for _ in range(3):
        identity = DeviceIdentity(home) if use_device else None
        state = identity.gateway_state(url) if identity else {}
        signature = state.get("signature", "v3")
        device_token = None if token else state.get("deviceToken")
        remember(device_token)
        try:
            client = await GatewayClient.connect(
                url,
                name=name,
                token=token,
                device_token=device_token,
                device=identity,
                signature=signature,
                scopes=scopes,
                timeout=max(0.1, deadline - time.monotonic()),
            )
        except GatewayError as e:
            if identity is None and e.reason == Reason.PAIRING_REQUIRED:
                use_device = True  # "device identity required": this gateway wants the key
                continue
            if (
                identity is not None
                and e.details.get("code") == "DEVICE_AUTH_SIGNATURE_INVALID"
                and signature == "v3"
            ):
                identity.remember(url, signature="v2")  # a 2026.2 gateway: v2 signatures only
                continue
            raise
        if identity is None and not client.scopes and scopes:
            await client.close()  # scopes cleared without a device: ask again with one
            use_device = True
            continue
        if identity is not None:
            remember(client.device_token)
            identity.remember(url, deviceToken=client.device_token, signature=signature)
        return client
    raise GatewayError(f"{name}: could not agree on credentials with {url}", reason=Reason.AUTH)


@asynccontextmanager
async def gateway_session(
    url: str,
    *,
    name: str,
    token: str | None,
    home: Path,
    scopes: tuple[str, ...] = (READ, WRITE),
    timeout: float = 10.0,
) -> AsyncIterator[GatewayClient]:
    """A connection for one command: inside a relay its warm one (left open for the next
    command), else one opened for the command and closed after it."""
    from clawrelay.relay import context

    resident = context.resident()
    if resident is not None:
        yield await resident.gateways.get(name, url, token, scopes=scopes, timeout=timeout)
        return
    client = await open_gateway(url, name=name, token=token, home=home, scopes=scopes, timeout=timeout)
    try:
        yield client
    finally:
        await client.close()


class GatewayPool:
    def __init__(self, home: Path, *, connect_timeout: float = 10.0) -> None:
        self.home = home
        self.connect_timeout = connect_timeout
        self._clients: dict[str, GatewayClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self,
        name: str,
        url: str,
        token: str | None,
        *,
        scopes: tuple[str, ...] = (READ, WRITE),
        timeout: float | None = None,
    ) -> GatewayClient:
        """The open connection to this gateway with these scopes, connecting (again) when there is none.

        Connections are kept per scope set: asking for more (operator.approvals for a node's
        approval flow) must not widen, or replace, the connection other sends are using.
        """
        # by address and credentials too: a relay serves routes files that may reuse a name
        secret = hashlib.sha256((token or "").encode()).hexdigest()[:16]
        key = f"{name}\0{url}\0{secret}\0{','.join(sorted(scopes))}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            client = self._clients.get(key)
            if client is not None and not client.closed:
                return client
            client = await open_gateway(
                url,
                name=name,
                token=token,
                home=self.home,
                scopes=scopes,
                timeout=self.connect_timeout if timeout is None else timeout,
            )
            self._clients[key] = client
            return client

    def connected(self) -> dict[str, bool]:
        """Each gateway this pool has opened: whether a connection to it is open now."""
        out: dict[str, bool] = {}
        for client in self._clients.values():
            out[client.name] = out.get(client.name, False) or not client.closed
        return out

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
