"""The floor for sessions_send: one connection, then N `agent` requests one after another, each
awaited until the gateway accepts it (what `clawrelay send T --via sessions_send` waits for, and
what an outbox drain does message after message). Nothing else: no journal, no claims.

    python raw_agent.py ws://127.0.0.1:PORT TOKEN SESSION_KEY N     (needs only `websockets`)

Prints one JSON object: the connect time, each request's time to its ack (ms) and the total for
the N requests (s), so bench/relay.py can set the relay's send latency and drain rate against it.
"""

import asyncio
import json
import sys
import time
import uuid

import websockets


async def main(url: str, token: str, session: str, n: int) -> None:
    t0 = time.perf_counter()
    async with websockets.connect(url, open_timeout=5, max_size=2**25) as ws:
        json.loads(await ws.recv())  # connect.challenge
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "c",
                    "method": "connect",
                    "params": {
                        "minProtocol": 3,
                        "maxProtocol": 4,
                        "role": "operator",
                        "scopes": ["operator.read", "operator.write"],
                        "client": {"id": "cli", "version": "0", "platform": "linux", "mode": "cli"},
                        "auth": {"token": token},
                    },
                }
            )
        )
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == "c":
                assert frame["ok"], frame
                break
        connected = time.perf_counter() - t0
        acks = []
        t1 = time.perf_counter()
        for i in range(n):
            rid = str(uuid.uuid4())
            params = {"message": f"raw {i}", "sessionKey": session, "deliver": False, "idempotencyKey": rid}
            t = time.perf_counter()
            await ws.send(json.dumps({"type": "req", "id": rid, "method": "agent", "params": params}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("id") == rid:
                    assert frame["ok"], frame
                    break
            acks.append(round((time.perf_counter() - t) * 1000, 2))
        total = time.perf_counter() - t1
    print(json.dumps({"connect_ms": round(connected * 1000, 1), "acks_ms": acks, "total_s": round(total, 3)}))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
