"""A gateway that misbehaves during the handshake: each way ends in the reason the docs give.

What a real gateway will not do on request (garbage instead of frames, a connection dropped in
the middle of the HTTP upgrade or the handshake, silence) is played by small loopback servers;
the attempt is driven through the router, so what is asserted is what the journal records.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from test_gateway_client import FakeGateway, routes_for
from websockets.asyncio.server import ServerConnection, serve

from clawrelay.journal import Journal
from clawrelay.outcome import Outcome
from clawrelay.router import Router

pytestmark = pytest.mark.integration  # every test serves a fake gateway on a loopback port


async def attempts_against(url: str, tmp_path: Path, step: str = "timeout: 2s, retries: 0") -> list[Any]:
    routes = routes_for(url, f"  xiaom: {{chain: [sessions_send: {{gateway: gw, {step}}}]}}\n", token="t")
    router = Router(routes, Journal(tmp_path))
    (env,) = router.envelopes(["xiaom"], "hello", 0)
    (delivery,) = await router.send([env])
    await router.aclose()
    (record,) = Journal(tmp_path).recent()
    assert [a.reason for a in record.attempts] == [a.reason for a in delivery.attempts]  # journaled as shown
    return delivery.attempts


class GarbageGateway:
    """Upgrades to WebSocket, then sends text that is not JSON at the given point."""

    def __init__(self, where: str) -> None:
        self.where = where

    async def handler(self, ws: ServerConnection) -> None:
        if self.where == "challenge":
            await ws.send("<html>502 Bad Gateway</html>")
        else:
            await ws.send(
                json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n"}})
            )
            await ws.recv()
            await ws.send("{not json")
        await ws.wait_closed()

    async def __aenter__(self) -> str:
        self.server = await serve(self.handler, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("where", ["challenge", "hello"])
def test_a_gateway_that_answers_garbage_is_a_bad_response_not_a_bug(tmp_path: Path, where: str) -> None:
    async def go() -> list[Any]:
        async with GarbageGateway(where) as url:
            return await attempts_against(url, tmp_path)

    (attempt,) = asyncio.run(go())
    assert (attempt.outcome, attempt.reason, attempt.retryable) == (Outcome.FAILED, "bad_response", False)
    assert "not JSON" in (attempt.detail or "")


def test_a_connection_dropped_during_the_http_upgrade_is_lost_and_retried(tmp_path: Path) -> None:
    accepted: list[float] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(time.monotonic())
        await reader.readuntil(b"\r\n\r\n")  # the upgrade request, then hang up without an answer
        writer.close()

    async def go() -> list[Any]:
        server = await asyncio.start_server(drop, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            return await attempts_against(url, tmp_path, "timeout: 5s, retries: 1")
        finally:
            server.close()

    attempts = asyncio.run(go())
    assert [(a.outcome, a.reason, a.retryable) for a in attempts] == [
        (Outcome.FAILED, "connection_lost", True)
    ] * 2
    assert len(accepted) == 2  # retried


def test_a_connection_closed_during_the_handshake_is_lost_and_retried(tmp_path: Path) -> None:
    fake = FakeGateway()

    async def close_after_challenge(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n"}}))
        await ws.recv()
        await ws.close(1011, "internal error")

    fake.handler = close_after_challenge  # type: ignore[method-assign]

    async def go() -> list[Any]:
        async with fake as url:
            return await attempts_against(url, tmp_path, "timeout: 5s, retries: 1")

    attempts = asyncio.run(go())
    assert [(a.outcome, a.reason, a.retryable) for a in attempts] == [
        (Outcome.FAILED, "connection_lost", True)
    ] * 2


def test_a_silent_gateway_is_a_handshake_timeout(tmp_path: Path) -> None:
    async def go() -> list[Any]:
        async with FakeGateway(challenge=False) as url:
            return await attempts_against(url, tmp_path, "timeout: 1s, retries: 0")

    (attempt,) = asyncio.run(go())
    assert (attempt.outcome, attempt.reason, attempt.retryable) == (Outcome.FAILED, "handshake_timeout", True)


def test_frames_of_the_wrong_shape_after_the_handshake_do_not_stall_the_connection() -> None:
    from clawrelay.openclaw import GatewayClient, GatewayError

    fake = FakeGateway()

    async def odd(frame: dict[str, Any], ws: ServerConnection) -> None:
        await ws.send("[1, 2, 3]")  # JSON, but not a frame
        await ws.send('"just a string"')
        await ws.send(json.dumps({"type": "res", "id": frame["id"], "ok": False, "error": "boom"}))

    fake.on_request = odd

    async def go() -> None:
        async with fake as url:
            client = await GatewayClient.connect(url, token="t")
            with pytest.raises(GatewayError) as e:
                await client.request("health", timeout=5)
            assert e.value.reason == "rejected" and "boom" in str(e.value)
            await client.close()

    asyncio.run(go())
