"""The floor for a Python gateway client: connect, `health`, exit. Nothing else.

    python raw_health.py ws://127.0.0.1:PORT TOKEN      (needs only `websockets`)

Whatever clawrelay does on top of this (config, journal, CLI parsing) is measured as a ratio
against it, in the same run, on the same gateway.

A copy of ../shared/bench/raw_health.py (same logic), for a checkout without ../shared:
bench/coldstart.py runs that one when it is there, else this one.
"""

import asyncio
import json
import sys
import uuid

import websockets


async def main(url: str, token: str) -> None:
    async with websockets.connect(url, open_timeout=5) as ws:
        json.loads(await ws.recv())  # connect.challenge
        cid = str(uuid.uuid4())
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": cid,
                    "method": "connect",
                    "params": {
                        "minProtocol": 3,
                        "maxProtocol": 4,
                        "role": "operator",
                        "scopes": ["operator.read"],
                        "client": {"id": "cli", "version": "0", "platform": "linux", "mode": "cli"},
                        "auth": {"token": token},
                    },
                }
            )
        )
        while True:
            fr = json.loads(await ws.recv())
            if fr.get("id") == cid:
                assert fr["ok"], fr
                break
        hid = str(uuid.uuid4())
        await ws.send(json.dumps({"type": "req", "id": hid, "method": "health", "params": {}}))
        while True:
            fr = json.loads(await ws.recv())
            if fr.get("id") == hid:
                print(fr["ok"])
                return


asyncio.run(main(sys.argv[1], sys.argv[2]))
