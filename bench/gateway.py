#!/usr/bin/env python3
"""`clawrelay call <gw> health` against the floor and against the openclaw CLI, in one run.

Starts a real OpenClaw gateway on a free loopback port (tests/peer.py; Node and openclaw from
scripts/install-openclaw.sh), then times, interleaved, N runs of:
  floor      a minimal Python websockets script: challenge, connect with the token, health, close
  clawrelay  `clawrelay call ws://127.0.0.1:PORT health --json`
  openclaw   `openclaw gateway call health --json` with the gateway's own config
and prints the median wall time and peak RSS of each, with ratios. Goals (issue 3): clawrelay
within 1.5x of the floor, at least 5x faster than the openclaw CLI, under 45 MB.

    python bench/gateway.py [--runs 10]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from measure import bench_setup, medians

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

FLOOR = """
import asyncio, json, os, sys
from websockets.asyncio.client import connect
async def main():
    async with connect(sys.argv[1], proxy=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
            "minProtocol": 3, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read"],
            "client": {"id": "cli", "version": "0", "platform": "linux", "mode": "cli"},
            "auth": {"token": os.environ["OPENCLAW_GATEWAY_TOKEN"]}}}))
        while json.loads(await ws.recv()).get("id") != "c":
            pass
        await ws.send(json.dumps({"type": "req", "id": "h", "method": "health", "params": {}}))
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == "h":
                sys.exit(0 if frame["ok"] else 1)
asyncio.run(main())
"""


def main() -> None:
    from peer import Gateway, openclaw_bin

    runs, exe, tmp = bench_setup(__doc__, "gw", 10)
    bin_dir = openclaw_bin()
    gw = Gateway(bin_dir, tmp / "gw").start()
    try:
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "OPENCLAW_GATEWAY_TOKEN": gw.token,
            "CLAWRELAY_HOME": str(tmp / "state"),
        }
        cases = {
            "floor (python websockets)": ([sys.executable, "-c", FLOOR, gw.url], base),
            "clawrelay call health": ([exe, "call", gw.url, "health", "--json"], base),
            "openclaw gateway call health": (
                [str(bin_dir / "openclaw"), "gateway", "call", "health", "--json"],
                {**gw.env(), "OPENCLAW_GATEWAY_TOKEN": gw.token},
            ),
        }
        med = medians(cases, runs, str(tmp))
    finally:
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    floor_t, _ = med["floor (python websockets)"]
    print(f"{runs} runs each, interleaved, against one real gateway on loopback; {os.cpu_count()} cpus")
    print(f"{'case':<30} {'median wall':>12} {'x floor':>8} {'peak RSS':>10}")
    for name, (t, m) in med.items():
        print(f"{name:<30} {t * 1000:>9.0f} ms {t / floor_t:>8.2f} {m / 1024:>7.1f} MB")
    ours, theirs = med["clawrelay call health"][0], med["openclaw gateway call health"][0]
    print(f"openclaw CLI / clawrelay: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
