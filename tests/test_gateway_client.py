"""The gateway client against an in-process fake gateway speaking the same frames.

For what a loopback gateway will not do on request: ask for pairing, speak another protocol,
restart under a request, stall the handshake, say UNAVAILABLE with a retry-after, grant too few
scopes, or refuse a v3 device signature. The frames are the ones PROTOCOL.md records.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from websockets.asyncio.server import ServerConnection, serve

from clawrelay.config.loader import parse_routes
from clawrelay.config.routes import Routes
from clawrelay.envelope import Envelope
from clawrelay.journal import Journal
from clawrelay.openclaw import GatewayClient, GatewayError, GatewayPool, open_gateway
from clawrelay.openclaw.device import DeviceIdentity
from clawrelay.outcome import Outcome
from clawrelay.router import Router
from clawrelay.transports import AttemptContext
from clawrelay.transports.sessions_send import SessionsSend

pytestmark = pytest.mark.integration  # every test serves a fake gateway on a loopback port

Reply = Callable[[dict[str, Any]], Awaitable[None]]


class FakeGateway:
    """Just enough of a gateway: challenge, connect, then `on_request(frame, ws)` per request."""

    def __init__(
        self,
        *,
        hello: dict[str, Any] | None = None,
        connect_error: dict[str, Any] | None = None,
        challenge: bool = True,
        verify: Callable[[dict[str, Any], str], dict[str, Any] | None] | None = None,
    ) -> None:
        self.hello = {
            "type": "hello-ok",
            "protocol": 4,
            "server": {"version": "fake"},
            "features": {"methods": ["health", "agent"]},
            "auth": {"role": "operator", "scopes": ["operator.read", "operator.write"]},
            **(hello or {}),
        }
        self.connect_error = connect_error
        self.challenge = challenge
        self.verify = verify
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.connects: list[dict[str, Any]] = []
        self.on_request: Callable[[dict[str, Any], ServerConnection], Awaitable[None]] = self.answer_ok

    async def answer_ok(self, frame: dict[str, Any], ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "res", "id": frame["id"], "ok": True, "payload": {"ok": True}}))

    async def handler(self, ws: ServerConnection) -> None:
        self.headers.append(dict(ws.request.headers))
        if not self.challenge:
            await ws.wait_closed()  # say nothing until the client gives up
            return
        nonce = "nonce-123"
        await ws.send(
            json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": nonce}})
        )
        frame = json.loads(await ws.recv())
        self.connects.append(frame["params"])
        error = self.connect_error or (self.verify(frame["params"], nonce) if self.verify else None)
        if error:
            await ws.send(json.dumps({"type": "res", "id": frame["id"], "ok": False, "error": error}))
            await ws.close(1008, error.get("message", ""))
            return
        await ws.send(json.dumps({"type": "res", "id": frame["id"], "ok": True, "payload": self.hello}))
        async for raw in ws:
            request = json.loads(raw)
            self.requests.append(request)
            await self.on_request(request, ws)

    async def __aenter__(self) -> str:
        self.server = await serve(self.handler, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_two_phase_answers_are_never_taken_as_final() -> None:
    fake = FakeGateway()

    async def two_phase(frame: dict[str, Any], ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "event", "event": "tick", "payload": {}}))
        await ws.send(
            json.dumps(
                {
                    "type": "res",
                    "id": frame["id"],
                    "ok": True,
                    "payload": {"runId": "r1", "status": "accepted"},
                }
            )
        )
        await asyncio.sleep(0.2)
        await ws.send(
            json.dumps(
                {
                    "type": "res",
                    "id": frame["id"],
                    "ok": True,
                    "payload": {"runId": "r1", "status": "ok", "result": {"payloads": [{"text": "hi"}]}},
                }
            )
        )

    fake.on_request = two_phase

    async def go() -> None:
        async with fake as url:
            client = await GatewayClient.connect(url, token="t")
            call = await client.start("agent", {"message": "x"})
            assert (await call.ack)["status"] == "accepted"
            assert (await call.final)["status"] == "ok"
            assert (await client.request("agent", {}))["status"] == "ok"
            await client.close()

    run(go())


def test_pairing_required_names_the_command_to_run() -> None:
    fake = FakeGateway(
        connect_error={
            "code": "NOT_PAIRED",
            "message": "pairing required",
            "details": {"code": "PAIRING_REQUIRED", "requestId": "req-42"},
        }
    )

    async def go() -> None:
        async with fake as url:
            with pytest.raises(GatewayError) as e:
                await GatewayClient.connect(url, token="t")
            assert e.value.reason == "pairing_required" and not e.value.retryable
            assert "openclaw devices approve req-42" in str(e.value)

    run(go())


@pytest.mark.parametrize(
    ("hello", "connect_error", "reason"),
    [
        ({"protocol": 5}, None, "protocol_mismatch"),
        (
            {},
            {
                "code": "INVALID_REQUEST",
                "message": "protocol mismatch",
                "details": {"code": "PROTOCOL_MISMATCH", "expectedProtocol": 5},
            },
            "protocol_mismatch",
        ),
        (
            {},
            {
                "code": "INVALID_REQUEST",
                "message": "unauthorized: gateway token mismatch",
                "details": {"code": "AUTH_TOKEN_MISMATCH"},
            },
            "auth",
        ),
    ],
)
def test_handshake_refusals_are_typed_and_permanent(
    hello: dict[str, Any], connect_error: Any, reason: str
) -> None:
    fake = FakeGateway(hello=hello, connect_error=connect_error)

    async def go() -> None:
        async with fake as url:
            with pytest.raises(GatewayError) as e:
                await GatewayClient.connect(url, token="t")
            assert e.value.reason == reason and not e.value.retryable

    run(go())


def test_a_stalled_handshake_times_out_and_is_retryable() -> None:
    fake = FakeGateway(challenge=False)

    async def go() -> None:
        async with fake as url:
            t0 = time.monotonic()
            with pytest.raises(GatewayError) as e:
                await GatewayClient.connect(url, token="t", timeout=0.5)
            assert e.value.reason == "handshake_timeout" and e.value.retryable
            assert time.monotonic() - t0 < 3

    run(go())


def test_no_origin_header_and_no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a dead proxy
    fake = FakeGateway()

    async def go() -> None:
        async with fake as url:
            client = await GatewayClient.connect(url, token="t")
            assert (await client.request("health"))["ok"] is True
            await client.close()
        assert "origin" not in {k.lower() for k in fake.headers[0]}

    run(go())


def routes_for(url: str, targets: str, token: str = "") -> Routes:
    """Routes with one gateway `gw` at the fake's URL and the given `targets:` mapping."""
    token_key = f', token: "{token}"' if token else ""
    routes, errors = parse_routes(
        f'version: 1\nself: xiaoa\ngateways: {{gw: {{url: "{url}"{token_key}}}}}\ntargets:\n{targets}',
        "t.yaml",
    )
    assert routes is not None, errors
    return routes


def context(url: str, pool: GatewayPool) -> AttemptContext:
    routes = routes_for(url, "  xiaom: {chain: [sessions_send: {gateway: gw}]}\n")
    return AttemptContext(
        routes, "xiaom", routes.plan("xiaom")[0], deadline=time.monotonic() + 10, gateway_pool=lambda: pool
    )


def test_a_restart_under_a_sent_request_is_ambiguous_not_failed(tmp_path: Path) -> None:
    fake = FakeGateway()

    async def restart(frame: dict[str, Any], ws: ServerConnection) -> None:
        await ws.close(1012, "service restart")

    fake.on_request = restart

    async def go() -> None:
        async with fake as url:
            pool = GatewayPool(tmp_path)
            ctx = context(url, pool)
            result = await SessionsSend().deliver(Envelope(sender="a", target="xiaom", body="x"), ctx)
            await pool.aclose()
        assert (result.outcome, result.reason) == (Outcome.AMBIGUOUS, "gateway_restarting")
        assert ctx.sent

    run(go())


def test_too_few_scopes_fails_before_anything_is_sent(tmp_path: Path) -> None:
    fake = FakeGateway(hello={"auth": {"role": "operator", "scopes": ["operator.read"]}})

    async def go() -> None:
        async with fake as url:
            pool = GatewayPool(tmp_path)
            ctx = context(url, pool)
            with pytest.raises(GatewayError) as e:
                await SessionsSend().deliver(Envelope(sender="a", target="xiaom", body="x"), ctx)
            await pool.aclose()
        assert e.value.reason == "missing_scope" and "operator.write" in str(e.value)
        assert not ctx.sent and fake.requests == []

    run(go())


def test_unavailable_with_retry_after_is_retried_no_sooner(tmp_path: Path) -> None:
    fake = FakeGateway()
    seen: list[float] = []

    async def busy_then_ok(frame: dict[str, Any], ws: ServerConnection) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            await ws.send(
                json.dumps(
                    {
                        "type": "res",
                        "id": frame["id"],
                        "ok": False,
                        "error": {
                            "code": "UNAVAILABLE",
                            "message": "busy",
                            "retryable": True,
                            "retryAfterMs": 1500,
                        },
                    }
                )
            )
        else:
            await ws.send(
                json.dumps(
                    {
                        "type": "res",
                        "id": frame["id"],
                        "ok": True,
                        "payload": {"runId": frame["params"]["idempotencyKey"], "status": "accepted"},
                    }
                )
            )

    fake.on_request = busy_then_ok

    async def go() -> None:
        async with fake as url:
            routes = routes_for(url, "  xiaom: {chain: [sessions_send: {gateway: gw, retries: 2}]}\n")
            router = Router(routes, Journal(tmp_path))
            env = router.envelopes(["xiaom"], "hello", 0)[0]
            (delivery,) = await router.send([env])
            await router.aclose()
        assert [(a.outcome, a.reason) for a in delivery.attempts] == [
            (Outcome.FAILED, "unavailable"),
            (Outcome.DELIVERED, None),
        ]
        assert seen[1] - seen[0] >= 1.5
        ids = {r["params"]["idempotencyKey"] for r in fake.requests}
        assert ids == {env.id}  # the retry carried the same idempotency key

    run(go())


def _verifier(accept: set[str]) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """Check the device block as a gateway does: rebuild the signed string, verify Ed25519."""

    def verify(params: dict[str, Any], nonce: str) -> dict[str, Any] | None:
        d = params["device"]
        pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
        pub = base64.urlsafe_b64decode(pad(d["publicKey"]))
        c = params["client"]
        token = params["auth"].get("token") or params["auth"].get("deviceToken") or ""
        base = [
            d["id"],
            c["id"],
            c["mode"],
            params["role"],
            ",".join(params["scopes"]),
            str(d["signedAt"]),
            token,
            nonce,
        ]
        candidates = {"v3": "|".join(["v3", *base, c["platform"].lower(), ""]), "v2": "|".join(["v2", *base])}
        for version in accept:
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(
                    base64.urlsafe_b64decode(pad(d["signature"])), candidates[version].encode()
                )
                return None
            except Exception:
                continue
        return {
            "code": "INVALID_REQUEST",
            "message": "device signature invalid",
            "details": {"code": "DEVICE_AUTH_SIGNATURE_INVALID"},
        }

    return verify


def test_device_identity_signs_v3_and_falls_back_to_v2_once(tmp_path: Path) -> None:
    v3 = FakeGateway(
        verify=_verifier({"v3"}),
        hello={"auth": {"role": "operator", "scopes": ["operator.read"], "deviceToken": "devtok-abc123"}},
    )
    v2_only = FakeGateway(
        verify=_verifier({"v2"}),
        hello={
            "auth": {
                "role": "operator",
                "scopes": ["operator.read", "operator.write"],
                "deviceToken": "devtok-v2-xyz",
            }
        },
    )

    async def go() -> None:
        async with v3 as url:
            client = await GatewayClient.connect(url, token="t", device=DeviceIdentity(tmp_path))
            assert client.device_token == "devtok-abc123"
            await client.close()
        async with v2_only as url:
            client = await open_gateway(url, name="old", token=None, home=tmp_path)  # no token: device
            await client.close()
            state = DeviceIdentity(tmp_path).gateway_state(url)
            assert state["signature"] == "v2"
            await (await open_gateway(url, name="old", token=None, home=tmp_path)).close()
        assert len(v2_only.headers) == 3  # v3 refused once, then v2; the next connect went straight to v2
        assert v2_only.connects[2]["auth"] == {"deviceToken": "devtok-v2-xyz"}  # the issued token, reused

    run(go())
    for name in ("identity.json", "tokens.json"):
        mode = stat.S_IMODE(os.stat(tmp_path / "device" / name).st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_one_connection_serves_a_whole_group_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TOKEN", "fake-token-1")
    fake = FakeGateway()

    async def accept(frame: dict[str, Any], ws: ServerConnection) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "res",
                    "id": frame["id"],
                    "ok": True,
                    "payload": {"runId": frame["params"]["idempotencyKey"], "status": "accepted"},
                }
            )
        )

    fake.on_request = accept

    async def go() -> None:
        async with fake as url:
            routes = routes_for(
                url,
                "".join(
                    f'  {t}: {{session: "agent:main:{t}", chain: [sessions_send: {{}}]}}\n' for t in "abc"
                ),
                token="${FAKE_TOKEN}",
            )
            router = Router(routes, Journal(tmp_path))
            deliveries = await router.send(router.envelopes(["a", "b", "c"], "to all", 0))
            await router.aclose()
        assert [d.status.value for d in deliveries] == ["delivered"] * 3
        assert len(fake.connects) == 1 and fake.connects[0]["auth"] == {"token": "fake-token-1"}
        assert sorted(r["params"]["sessionKey"] for r in fake.requests) == [
            "agent:main:a",
            "agent:main:b",
            "agent:main:c",
        ]

    run(go())
