#!/usr/bin/env python3
"""The fleet commands against their one-target baselines, in one run.

Starts a real OpenClaw gateway on a free loopback port (tests/peer.py) and two "dead" gateways:
loopback ports that accept a connection and never answer (a machine gone silent, the slow case:
refused connections fail at once). Six targets: four on the live gateway, one on each dead one.
Times, interleaved, N runs of:
  send 1              `clawrelay send t1 …` (sessions_send, one target): the baseline
  send @four          one group send to the four live targets (concurrent, one connection)
  4 sends in a row    four `clawrelay send` processes one after the other
  status (6 targets)  `clawrelay status --timeout 2s`: every step probed at once
  doctor (6 targets)  `clawrelay doctor --timeout 2s`: the same probes one after the other
and prints medians with ratios: a group send against one send, status against doctor and
against its own probe timeout.

    python bench/fleet.py [--runs 5]
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from pathlib import Path

from measure import bench_setup, medians

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
PROBE_TIMEOUT = 2.0


def silent_port() -> int:
    """A loopback port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def main() -> None:
    from peer import Gateway, openclaw_bin

    runs, exe, tmp = bench_setup(__doc__, "fleet", 5)
    gw = Gateway(openclaw_bin(), tmp / "gw").start()
    try:
        dead = [silent_port(), silent_port()]
        live = "\n".join(
            f'  t{i}: {{session: "agent:main:bench-{i}", chain: [sessions_send: {{gateway: live}}]}}'
            for i in range(1, 5)
        )
        (tmp / "routes.yaml").write_text(
            "version: 1\nself: bench\ngateways:\n"
            f'  live: {{url: "{gw.url}", token: "${{TOKEN}}"}}\n'
            + "".join(
                f'  dead{i}: {{url: "ws://127.0.0.1:{p}", token: "${{TOKEN}}"}}\n' for i, p in enumerate(dead)
            )
            + f"targets:\n{live}\n"
            + "".join(f"  d{i}: {{chain: [sessions_send: {{gateway: dead{i}}}]}}\n" for i in range(len(dead)))
            + "groups: {four: [t1, t2, t3, t4]}\n"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "TOKEN": gw.token,
            "CLAWRELAY_HOME": str(tmp / "state"),
            "CLAWRELAY_CONFIG": str(tmp / "routes.yaml"),
        }
        timeout = f"{PROBE_TIMEOUT:g}s"
        four = " && ".join(f'"{exe}" send t{i} "bench"' for i in range(1, 5))
        cases = {
            "send 1": ([exe, "send", "t1", "bench"], env),
            "send @four": ([exe, "send", "@four", "bench"], env),
            "4 sends in a row": (["/bin/sh", "-c", four], env),
            # exit 1: a dead target has no way that works; measure() wants 0, so `; true`
            "status (6 targets)": (
                ["/bin/sh", "-c", f'"{exe}" status --timeout {timeout} >/dev/null; true'],
                env,
            ),
            "doctor (6 targets)": (
                ["/bin/sh", "-c", f'"{exe}" doctor --timeout {timeout} >/dev/null; true'],
                env,
            ),
        }
        med = medians(cases, runs, str(tmp))
    finally:
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base = med["send 1"][0]
    print(
        f"{runs} runs each, interleaved, one real gateway and two silent ones on loopback; "
        f"{os.cpu_count()} cpus; probe timeout {PROBE_TIMEOUT:g}s"
    )
    print(f"{'case':<22} {'median wall':>12} {'x send 1':>9}")
    for name, (t, _) in med.items():
        print(f"{name:<22} {t * 1000:>9.0f} ms {t / base:>9.2f}")
    group, row = med["send @four"][0], med["4 sends in a row"][0]
    status, doctor = med["status (6 targets)"][0], med["doctor (6 targets)"][0]
    print(f"4 sends in a row / send @four: {row / group:.2f}x")
    print(
        f"doctor / status: {doctor / status:.2f}x; status = {status / PROBE_TIMEOUT:.2f}x its probe timeout"
    )


if __name__ == "__main__":
    main()
