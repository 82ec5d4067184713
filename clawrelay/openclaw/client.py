"""An OpenClaw gateway connection, spoken natively over WebSocket (protocol 3..4).

Not the `openclaw` CLI: that costs a Node start and ~220 MB per call. The handshake is the
gateway's: wait for `connect.challenge`, send `connect` (token, and a signed device block where
the gateway needs one), check `hello-ok`. After that, requests carry ids and each may be
answered twice (an `accepted` first, the final later); one reader task routes the answers to
their requests, so one connection serves every request of a process.

No proxy from the environment and no Origin header: both change how a gateway treats a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from clawrelay import __version__
from clawrelay.openclaw.errors import GatewayError, from_close, from_frame
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.openclaw.device import DeviceIdentity

PROTOCOL_MIN, PROTOCOL_MAX = 3, 4
READ, WRITE, ADMIN, APPROVALS, PAIRING = (
    "operator.read",
    "operator.write",
    "operator.admin",
    "operator.approvals",
    "operator.pairing",
)
ALL_SCOPES = (ADMIN, READ, WRITE, APPROVALS, PAIRING)
MAX_FRAME = 32 * 2**20
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in LOOPBACK or host.startswith("127.")


def _future() -> asyncio.Future[dict[str, Any]]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Call:
    """One request in flight: its first answer (`ack`) and its final one."""

    id: str
    method: str
    ack: asyncio.Future[dict[str, Any]] = field(default_factory=_future)
    final: asyncio.Future[dict[str, Any]] = field(default_factory=_future)

    def fail(self, exc: BaseException) -> None:
        for fut in (self.ack, self.final):
            if not fut.done():
                fut.set_exception(exc)
            # A caller awaits one of the two, never both: mark both retrieved so asyncio does not
            # warn about the other. Awaiting either still raises.
            with contextlib.suppress(BaseException):
                fut.exception()


def _frame(raw: str | bytes, label: str) -> dict[str, Any]:
    """One handshake frame: a JSON object, or the gateway is not speaking the protocol."""
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        shown = raw[:60] if isinstance(raw, str) else repr(raw[:60])
        raise GatewayError(
            f"{label}: the gateway answered with something that is not JSON: {shown!r}",
            reason=Reason.BAD_RESPONSE,
        )
    return frame


class Listener:
    """Events of one connection, as they arrive (see `GatewayClient.listen`).

    Only events that arrive while it is registered are seen: register before sending the request
    whose consequences you want to watch.
    """

    def __init__(self, names: frozenset[str] | None) -> None:
        self.names = names
        self._queue: asyncio.Queue[dict[str, Any] | GatewayError] = asyncio.Queue()

    def _put(self, item: dict[str, Any] | GatewayError) -> None:
        self._queue.put_nowait(item)

    async def next(self) -> dict[str, Any]:
        """The next event frame (`{"event", "payload", …}`); the connection's error once it closed."""
        item = await self._queue.get()
        if isinstance(item, GatewayError):
            self._queue.put_nowait(item)  # every later call raises it too
            raise item
        return item


class GatewayClient:
    """A connected, authenticated operator session on one gateway."""

    def __init__(self, ws: Any, hello: dict[str, Any], url: str, name: str) -> None:
        self.ws = ws
        self.hello = hello
        self.url = url
        self.name = name
        self.protocol: int = hello.get("protocol", 0)
        self.scopes: frozenset[str] = frozenset((hello.get("auth") or {}).get("scopes") or ())
        self._pending: dict[str, Call] = {}
        self._closed: GatewayError | None = None
        self._listeners: list[Listener] = []
        self._reader = asyncio.ensure_future(self._read())

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str | None = None,
        token: str | None = None,
        device_token: str | None = None,
        device: DeviceIdentity | None = None,
        signature: str = "v3",
        scopes: tuple[str, ...] = (READ, WRITE),
        timeout: float = 10.0,
    ) -> GatewayClient:
        """Open, handshake and authenticate, all within `timeout` seconds."""
        import websockets
        from websockets.asyncio.client import connect

        label = name or url
        try:
            async with asyncio.timeout(timeout):
                try:
                    ws = await connect(
                        url,
                        proxy=None,
                        max_size=MAX_FRAME,
                        compression=None,
                        open_timeout=None,
                        user_agent_header=f"clawrelay/{__version__}",
                    )
                except ConnectionRefusedError as e:
                    raise GatewayError(
                        f"{label}: connection refused ({url}): is the gateway running?",
                        reason=Reason.CONNECTION_REFUSED,
                    ) from e
                except websockets.InvalidStatus as e:
                    status = e.response.status_code
                    reason = Reason.UNAVAILABLE if status >= 500 else Reason.REJECTED
                    raise GatewayError(
                        f"{label}: HTTP {status} instead of a WebSocket upgrade ({url})", reason=reason
                    ) from e
                except websockets.InvalidMessage as e:
                    if isinstance(e.__cause__, EOFError | ConnectionError):  # hung up mid-upgrade: try again
                        raise GatewayError(
                            f"{label}: the connection closed during the WebSocket upgrade ({url})",
                            reason=Reason.CONNECTION_LOST,
                        ) from e
                    raise GatewayError(
                        f"{label}: not an OpenClaw gateway at {url}: {e}", reason=Reason.BAD_RESPONSE
                    ) from e
                except (websockets.InvalidURI, websockets.InvalidHandshake) as e:
                    raise GatewayError(
                        f"{label}: not an OpenClaw gateway at {url}: {e}", reason=Reason.REJECTED
                    ) from e
                except OSError as e:
                    ssl = e.__class__.__name__.startswith("SSL")
                    raise GatewayError(
                        f"{label}: cannot reach {url}: {e.strerror or e}",
                        reason=Reason.TLS if ssl else Reason.UNREACHABLE,
                    ) from e
                try:
                    hello = await cls._handshake(
                        ws, label, url, token, device_token, device, signature, scopes
                    )
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError as e:
            raise GatewayError(
                f"{label}: no handshake within {timeout:g}s ({url})", reason=Reason.HANDSHAKE_TIMEOUT
            ) from e
        return cls(ws, hello, url, label)

    @staticmethod
    async def _handshake(
        ws: Any,
        label: str,
        url: str,
        token: str | None,
        device_token: str | None,
        device: DeviceIdentity | None,
        signature: str,
        scopes: tuple[str, ...],
    ) -> dict[str, Any]:
        import websockets

        try:
            first = _frame(await ws.recv(), label)
            if first.get("type") != "event" or first.get("event") != "connect.challenge":
                raise GatewayError(
                    f"{label}: expected connect.challenge, got {str(first)[:120]}",
                    reason=Reason.PROTOCOL_MISMATCH,
                )
            nonce = str((first.get("payload") or {}).get("nonce") or "")
            client = {"id": "cli", "version": __version__, "platform": sys.platform, "mode": "cli"}
            auth = {"token": token} if token else ({"deviceToken": device_token} if device_token else {})
            params: dict[str, Any] = {
                "minProtocol": PROTOCOL_MIN,
                "maxProtocol": PROTOCOL_MAX,
                "client": client,
                "role": "operator",
                "scopes": list(scopes),
                "auth": auth,
            }
            if device is not None:
                params["device"] = device.block(
                    nonce=nonce,
                    client=client,
                    role="operator",
                    scopes=list(scopes),
                    token=token or device_token or "",
                    version=signature,
                )
            rid = str(uuid.uuid4())
            await ws.send(json.dumps({"type": "req", "id": rid, "method": "connect", "params": params}))
            while True:
                frame = _frame(await ws.recv(), label)
                if frame.get("type") == "res" and frame.get("id") == rid:
                    break
        except websockets.ConnectionClosed as e:
            rcvd = e.rcvd
            raise from_close(
                rcvd.code if rcvd else None, rcvd.reason if rcvd else "", label, during="connect"
            ) from None
        if not frame.get("ok"):
            raise from_frame(frame.get("error") or {}, label)
        hello = frame.get("payload") or {}
        protocol = hello.get("protocol")
        if (
            hello.get("type") != "hello-ok"
            or not isinstance(protocol, int)
            or not PROTOCOL_MIN <= protocol <= PROTOCOL_MAX
        ):
            raise GatewayError(
                f"{label}: gateway answered protocol {protocol!r}; clawrelay speaks "
                f"{PROTOCOL_MIN}..{PROTOCOL_MAX}",
                reason=Reason.PROTOCOL_MISMATCH,
            )
        return hello

    # -- requests --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def device_token(self) -> str | None:
        return (self.hello.get("auth") or {}).get("deviceToken")

    def require(self, *scopes: str, method: str = "this call") -> None:
        """Fail before sending when the connection was granted fewer scopes than `method` needs."""
        missing = [s for s in scopes if s not in self.scopes and ADMIN not in self.scopes]
        if missing:
            granted = ", ".join(sorted(self.scopes)) or "none"
            raise GatewayError(
                f"{self.name}: {method} needs {', '.join(missing)}; the gateway granted "
                f"{granted} (pair this device, or use a token with more scopes)",
                reason=Reason.MISSING_SCOPE,
            )

    async def start(self, method: str, params: dict[str, Any] | None = None) -> Call:
        """Send one request; the returned Call resolves as its answers arrive.

        When this returns, the frame has been handed to the socket: from here on a lost answer
        means the request may have run.
        """
        if self._closed is not None:
            raise self._closed
        call = Call(str(uuid.uuid4()), method)
        self._pending[call.id] = call
        frame = {"type": "req", "id": call.id, "method": method, "params": params or {}}
        try:
            await self.ws.send(json.dumps(frame, ensure_ascii=False))
        except Exception as e:
            self._pending.pop(call.id, None)
            raise self._closed or GatewayError(
                f"{self.name}: connection lost before {method} was sent", reason=Reason.CONNECTION_LOST
            ) from e
        return call

    def forget(self, call: Call) -> None:
        """Stop waiting for a call's answer (its caller gave up on it)."""
        self._pending.pop(call.id, None)

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """One request, its final answer's payload (an `accepted` answer is never taken as final)."""
        call = await self.start(method, params)
        try:
            async with asyncio.timeout(timeout):
                return await call.final
        except TimeoutError:
            self.forget(call)
            raise GatewayError(
                f"{self.name}: no answer to {method} within {timeout:g}s", reason=Reason.TIMEOUT
            ) from None

    @contextlib.contextmanager
    def listen(self, *names: str) -> Iterator[Listener]:
        """Receive this connection's events (only those named, or all) while the block runs.

        A gateway sends some events to every operator connection (`agent`, `chat` of runs users
        started, `tick`) and others only after a subscription (`sessions.messages.subscribe`).
        """
        listener = Listener(frozenset(names) if names else None)
        if self._closed is not None:
            listener._put(self._closed)
        self._listeners.append(listener)
        try:
            yield listener
        finally:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

    async def close(self) -> None:
        self._closed = self._closed or GatewayError(
            f"{self.name}: connection closed by clawrelay", reason=Reason.CONNECTION_LOST
        )
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    # -- the reader ------------------------------------------------------------------------

    async def _read(self) -> None:
        import websockets

        closed: GatewayError
        try:
            async for raw in self.ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(frame, dict):  # not a frame of the protocol: nothing to route
                    continue
                if frame.get("type") == "res":
                    self._on_res(frame)
                elif frame.get("type") == "event":
                    # Liveness is the WebSocket ping the library answers; events go to listeners only.
                    for listener in self._listeners:
                        if listener.names is None or frame.get("event") in listener.names:
                            listener._put(frame)
            closed = from_close(self.ws.close_code, self.ws.close_reason or "", self.name, during="a request")
        except websockets.ConnectionClosed as e:
            rcvd = e.rcvd
            closed = from_close(
                rcvd.code if rcvd else None, rcvd.reason if rcvd else "", self.name, during="a request"
            )
        except asyncio.CancelledError:
            closed = GatewayError(
                f"{self.name}: connection closed by clawrelay", reason=Reason.CONNECTION_LOST
            )
        self._closed = self._closed or closed
        for call in self._pending.values():
            call.fail(self._closed)
        self._pending.clear()
        for listener in self._listeners:
            listener._put(self._closed)

    def _on_res(self, frame: dict[str, Any]) -> None:
        call = self._pending.get(str(frame.get("id")))
        if call is None:
            return
        if not frame.get("ok"):
            self._pending.pop(call.id, None)
            call.fail(from_frame(frame.get("error") or {}, self.name))
            return
        payload = frame.get("payload")
        payload = payload if isinstance(payload, dict) else {"value": payload}
        if not call.ack.done():
            call.ack.set_result(payload)
            if payload.get("status") == "accepted":
                return  # two-phase: the final answer comes later on the same id
        self._pending.pop(call.id, None)
        if not call.final.done():
            call.final.set_result(payload)
