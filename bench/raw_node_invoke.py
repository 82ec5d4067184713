"""The floor for running a command on a node: connect, `node.invoke` system.run, exit. Nothing else.

    python raw_node_invoke.py ws://127.0.0.1:PORT TOKEN NODE_ID [ARGV...]   (default ARGV: true)

Needs only the standard library and `websockets`, like ../shared/bench/raw_health.py. Its exit
code is the command's: `clawrelay exec HOST --via node -- ARGV` is measured against it.
"""

import asyncio
import json
import sys
import uuid

import websockets


async def request(
    ws: websockets.ClientConnection, method: str, params: dict[str, object]
) -> dict[str, object]:
    """The final answer to one request: a first `accepted` answer on the same id is not final."""
    rid = str(uuid.uuid4())
    await ws.send(json.dumps({"type": "req", "id": rid, "method": method, "params": params}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("id") != rid:
            continue
        if frame.get("ok") and (frame.get("payload") or {}).get("status") == "accepted":
            continue
        return frame


async def main(url: str, token: str, node_id: str, argv: list[str]) -> int:
    async with websockets.connect(url, open_timeout=5, max_size=2**25) as ws:
        json.loads(await ws.recv())  # connect.challenge
        hello = await request(
            ws,
            "connect",
            {
                "minProtocol": 3,
                "maxProtocol": 4,
                "role": "operator",
                "scopes": ["operator.read", "operator.write"],
                "client": {"id": "cli", "version": "0", "platform": "linux", "mode": "cli"},
                "auth": {"token": token},
            },
        )
        assert hello["ok"], hello
        run = {"command": argv, "timeoutMs": 30000}
        params = {"nodeId": node_id, "command": "system.run", "params": run, "timeoutMs": 35000}
        frame = await request(ws, "node.invoke", {**params, "idempotencyKey": str(uuid.uuid4())})
        assert frame["ok"], frame
        result = frame["payload"]["payload"]  # type: ignore[index]
        return int(result.get("exitCode", 127))


sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:] or ["true"])))
