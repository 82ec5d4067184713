#!/usr/bin/env python3
"""`clawrelay exec` over a node and over ssh, against the raw round trip of each, in one run.

Starts a real OpenClaw gateway and node host (tests/peer.py) and a real sshd on loopback
(tests/sshd.py), then times, interleaved, N runs of:
  node raw        a minimal Python script: connect with the token, node.invoke system.run `true`
  clawrelay node  `clawrelay exec xiaom --via node -- true`
  ssh raw         `ssh -p PORT host true` (OpenSSH's client, key and known_hosts given)
  clawrelay ssh   `clawrelay exec box --via ssh -- true`
and prints the median wall time and peak RSS of each, with the ratio of clawrelay to its raw
round trip. Goal (issue 4): within 1.3x of each.

    python bench/exec.py [--runs 10]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from measure import bench_setup, medians

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

NODE_RAW = """
import asyncio, json, os, sys, uuid
from websockets.asyncio.client import connect
async def request(ws, rid, method, params):
    await ws.send(json.dumps({"type": "req", "id": rid, "method": method, "params": params}))
    while True:
        frame = json.loads(await ws.recv())
        accepted = frame.get("ok") and (frame.get("payload") or {}).get("status") == "accepted"
        if frame.get("id") == rid and not accepted:
            return frame
async def main():
    async with connect(sys.argv[1], proxy=None, max_size=2**24) as ws:
        await ws.recv()
        await request(ws, "c", "connect", {
            "minProtocol": 3, "maxProtocol": 4, "role": "operator",
            "scopes": ["operator.read", "operator.write"],
            "client": {"id": "cli", "version": "0", "platform": "linux", "mode": "cli"},
            "auth": {"token": os.environ["OPENCLAW_GATEWAY_TOKEN"]}})
        frame = await request(ws, "r", "node.invoke", {"nodeId": sys.argv[2], "command": "system.run",
            "params": {"command": ["true"], "timeoutMs": 30000}, "timeoutMs": 35000,
            "idempotencyKey": str(uuid.uuid4())})
        sys.exit(0 if frame["ok"] and frame["payload"]["payload"]["exitCode"] == 0 else 1)
asyncio.run(main())
"""


def main() -> None:
    from peer import Gateway, openclaw_bin
    from sshd import Sshd, sshd_bin

    runs, exe, tmp = bench_setup(__doc__, "exec", 10)
    gw = Gateway(openclaw_bin(), tmp / "gw").start()
    ssh = Sshd(tmp / "sshd")
    try:
        node_id = gw.start_node("xiaom")
        ssh.start(sshd_bin())
        routes = tmp / "routes.yaml"
        routes.write_text(f"""version: 1
self: bench
gateways:
  gw: {{url: "{gw.url}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}
hosts:
  xiaom: {{node: {{gateway: gw, id: "{node_id}"}}}}
  box: {{ssh: {ssh.routes_entry()}}}
targets:
  t: {{host: box, chain: [memory_file]}}
""")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "OPENCLAW_GATEWAY_TOKEN": gw.token,
            "CLAWRELAY_HOME": str(tmp / "state"),
        }
        argvs = {
            "node raw (node.invoke script)": [sys.executable, "-c", NODE_RAW, gw.url, node_id],
            "clawrelay exec --via node": [
                exe,
                "exec",
                "xiaom",
                "--via",
                "node",
                "-c",
                str(routes),
                "--",
                "true",
            ],
            "ssh raw (ssh host true)": [shutil.which("ssh") or "/usr/bin/ssh", *ssh.ssh_argv("true")[1:]],
            "clawrelay exec --via ssh": [exe, "exec", "box", "--via", "ssh", "-c", str(routes), "--", "true"],
        }
        cases = {name: (argv, env) for name, argv in argvs.items()}
        med = medians(cases, runs, str(tmp))
    finally:
        ssh.stop()
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{runs} runs each, interleaved, real node host and sshd on loopback; {os.cpu_count()} cpus")
    print(f"{'case':<32} {'median wall':>12} {'x raw':>7} {'peak RSS':>10}")
    names = list(med)
    for raw, ours in ((names[0], names[1]), (names[2], names[3])):
        for name in (raw, ours):
            t, m = med[name]
            print(f"{name:<32} {t * 1000:>9.0f} ms {t / med[raw][0]:>7.2f} {m / 1024:>7.1f} MB")


if __name__ == "__main__":
    main()
