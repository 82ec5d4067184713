#!/usr/bin/env python3
"""The fleet's shared outbox drained by one relay and by three, in one run.

Starts a real Redis (tests/redis_server.py, password and append-only file on) and a sender relay
`a` (`clawrelay serve` with `fleet:`) whose only way to the target is a gateway on a closed port:
its probes see it down, so it never reads the target's stream itself. Each trial, on a fresh
Redis database and fresh state dirs:

  1. N messages sent through `a`'s relay (forwarded `clawrelay send`, bench/relay.py's driver):
     each fails and is queued; at `a`'s next heartbeat every one is offered to the fleet;
  2. K deliverer relays started (own state dirs and routes.yaml: the target is a `command` that
     appends `ID NODE` to a file), timed from their start until `a`'s journal says all N
     delivered (each settled "delivered by NODE via command").

Then it checks exactly once: every id once in the file, `a`'s journal N delivered with one
delivered attempt each, the stream empty. The baseline, in the same run: the same N messages
flushed by one relay with no fleet (`clawrelay outbox flush --now` forwarded to it, the
target's routes switched from the closed port to the same command), the sequential floor a
fleet of one is to be measured against. Reports messages/s for the local flush and for 1 and 3
deliverers (median over --rounds, interleaved), the 3-vs-1 ratio, how the three shared the work
and the time from the deliverers' start to their first delivery.

    .venv/bin/python bench/fleet_drain.py [--n 300] [--rounds 3] [--json] [--quick]   (~80 s)

--quick: N 60, one round (a smoke run, ~12 s). Heartbeat 500ms, ttl 2s (--heartbeat, --ttl).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

PW_VAR = "FLEET_BENCH_PW"
TARGET = "t"


def routes(name: str, redis_port: int, chain: str, *, gateways: str = "", fleet: dict | None) -> str:
    text = f"version: 1\nself: {name}\n{gateways}"
    if fleet is not None:
        text += (
            "fleet:\n"
            f'  redis: "redis://:${{{PW_VAR}}}@127.0.0.1:{redis_port}/0"\n'
            f"  heartbeat: {fleet['heartbeat']}\n"
            f"  ttl: {fleet['ttl']}\n"
        )
    return text + f"targets:\n  {TARGET}: {{chain: [{chain}]}}\n"


def command_step(out: Path, name: str) -> str:
    line = f'echo "$CLAWRELAY_ID {name}" >> "{out}"'
    return f"command: {{argv: {json.dumps(['sh', '-c', line])}, retries: 0, timeout: 30s}}"


def read_ids(out: Path) -> list[tuple[str, str]]:
    if not out.exists():
        return []
    return [tuple(line.split()) for line in out.read_text().splitlines() if line.strip()]  # type: ignore[misc]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from measure import clawrelay_exe
        from relay import closed_port

        self.args = args
        self.exe = clawrelay_exe()
        self.tmp = Path(tempfile.mkdtemp(prefix="clawrelay-bench-fleet-drain-"))
        self.dead = f"ws://127.0.0.1:{closed_port()}"
        self.fleet = {"heartbeat": args.heartbeat, "ttl": args.ttl}
        self.started = time.monotonic()
        self.relays: list[Any] = []
        self.res: dict[str, Any] = {
            "machine": {
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            },
            "n": args.n,
            "rounds": args.rounds,
            "heartbeat": args.heartbeat,
            "ttl": args.ttl,
            "trials": [],
        }

    def say(self, text: str) -> None:
        out = sys.stderr if self.args.json else sys.stdout
        print(f"[{time.monotonic() - self.started:5.0f} s] {text}", file=out, flush=True)

    def env(self, folder: Path) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(folder),
            "LANG": "C.UTF-8",
            "CLAWRELAY_HOME": str(folder / "state"),
            "OPENCLAW_GATEWAY_TOKEN": "not-a-real-token",
            PW_VAR: self.redis.password,
        }

    def relay(self, folder: Path, text: str, *, wait: bool = True) -> Any:
        """`clawrelay serve` with these routes in its own folder and state dir (once it answers)."""
        from relay import RelayProc

        folder.mkdir(parents=True)
        path = folder / "routes.yaml"
        path.write_text(text)
        proc = RelayProc(self.exe, path, self.env(folder), folder)
        self.relays.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    def stop(self, proc: Any) -> dict[str, Any]:
        code, traceback = proc.stop()
        self.relays.remove(proc)
        return {"code": code, "traceback": traceback, **({"log": proc.tail(20)} if code or traceback else {})}

    def queue(self, folder: Path, routes_path: Path, env: dict[str, str]) -> float:
        """N forwarded sends that fail (the closed port) and are queued: the seconds they took."""
        from relay import drive

        t0 = time.perf_counter()
        d = drive(["send", TARGET, "fleet drain {i}", "-c", str(routes_path)], self.args.n, env, folder)
        took = time.perf_counter() - t0
        if d["not_forwarded"] or d["codes"] != {"1": self.args.n}:
            raise RuntimeError(f"queueing: {d['codes']}, {d['not_forwarded']} not forwarded")
        return took

    def wait(self, what: str, predicate: Any, limit: float, step: float = 0.05) -> Any:
        end = time.monotonic() + limit
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise RuntimeError(f"not within {limit:g} s: {what}")
            time.sleep(step)

    # -- the baseline: one relay, no fleet ----------------------------------------------------

    def local(self, k: int) -> dict[str, Any]:
        from relay import journal_check, write_atomic

        n = self.args.n
        folder = self.tmp / f"local-{k}"
        out = folder / "delivered.txt"
        broken = routes(
            "solo", 0, "sessions_send: {gateway: dead, retries: 0}", gateways=self._gw(), fleet=None
        )
        proc = self.relay(folder, broken)
        env = self.env(folder)
        queued_s = self.queue(folder, folder / "routes.yaml", env)
        write_atomic(folder / "routes.yaml", routes("solo", 0, command_step(out, "solo"), fleet=None))
        import subprocess

        t0 = time.perf_counter()
        p = subprocess.run(
            [self.exe, "outbox", "flush", "--now", "--json", "-c", str(folder / "routes.yaml")],
            env=env,
            cwd=folder,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        journal = journal_check(folder / "state", TARGET)
        ids = Counter(i for i, _ in read_ids(out))
        return {
            "kind": "local",
            "queued_s": round(queued_s, 2),
            "wall_s": round(wall, 3),
            "per_s": round(n / wall, 1),
            "exit": p.returncode,
            "exactly_once": journal["by_status"] == {"delivered": n}
            and journal["delivered_once"] == n
            and len(ids) == n
            and set(ids.values()) == {1},
            "relay": self.stop(proc),
        }

    def _gw(self) -> str:
        return f'gateways:\n  dead: {{url: "{self.dead}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}\n'

    # -- the fleet: one sender, K deliverers ----------------------------------------------------

    def fleet_trial(self, k: int, deliverers: int) -> dict[str, Any]:
        from relay import journal_check

        n = self.args.n
        self.redis.cli("FLUSHALL")
        base = self.tmp / f"fleet-{k}-{deliverers}"
        out = base / "delivered.txt"
        a_dir = base / "a"
        a_text = routes(
            "a",
            self.redis.port,
            "sessions_send: {gateway: dead, retries: 0}",
            gateways=self._gw(),
            fleet=self.fleet,
        )
        a = self.relay(a_dir, a_text)
        queued_s = self.queue(a_dir, a_dir / "routes.yaml", self.env(a_dir))
        stream = f"clawrelay:{{fleet}}:outbox:{TARGET}"
        t_offer = time.perf_counter()
        self.wait(
            "every message offered",
            lambda: journal_check(a_dir / "state", TARGET)["by_status"] == {"offered": n},
            30,
            0.1,
        )
        offered_s = time.perf_counter() - t_offer
        assert self.redis.cli("XLEN", stream) == str(n)

        t0 = time.perf_counter()
        nodes = []  # all started at once, then waited for: none gets a head start
        for d in range(deliverers):
            name = f"d{d + 1}"
            text = routes(name, self.redis.port, command_step(out, name), fleet=self.fleet)
            nodes.append(self.relay(base / name, text, wait=False))
        for proc in nodes:
            proc.wait_ready()
        started_s = time.perf_counter() - t0
        self.wait("a first delivery", lambda: out.exists() and out.stat().st_size, 60, 0.005)
        first_s = time.perf_counter() - t0
        self.wait("every id in the file", lambda: len(read_ids(out)) >= n, 600, 0.01)
        in_file_s = time.perf_counter() - t0
        self.wait(
            "a's journal: all delivered",
            lambda: journal_check(a_dir / "state", TARGET)["by_status"] == {"delivered": n},
            60,
            0.05,
        )
        settled_s = time.perf_counter() - t0

        lines = read_ids(out)
        ids = Counter(i for i, _ in lines)
        journal = journal_check(a_dir / "state", TARGET)
        time.sleep(1.0)  # anything delivered twice late would show now
        late = len(read_ids(out)) - len(lines)
        exits = [self.stop(p) for p in [*nodes, a]]
        return {
            "kind": "fleet",
            "deliverers": deliverers,
            "queued_s": round(queued_s, 2),
            "offered_s": round(offered_s, 2),
            "relays_started_s": round(started_s, 2),
            "first_delivery_s": round(first_s, 2),
            "in_file_s": round(in_file_s, 3),
            "settled_s": round(settled_s, 3),
            "per_s": round(n / settled_s, 1),
            "per_s_in_file": round(n / in_file_s, 1),
            # first delivery to last: the drain itself, without the relays' start
            "per_s_window": round((n - 1) / max(in_file_s - first_s, 1e-3), 1),
            "share": dict(sorted(Counter(node for _, node in lines).items())),
            "exactly_once": len(ids) == n
            and set(ids.values()) == {1}
            and late == 0
            and journal["by_status"] == {"delivered": n}
            and journal["delivered_once"] == n
            and self.redis.cli("XLEN", stream) == "0",
            "relays": exits,
        }

    def run(self) -> None:
        from redis_server import RedisServer, redis_bin

        self.redis = RedisServer(self.tmp / "redis").start(redis_bin())
        try:
            for k in range(self.args.rounds):
                self.say(f"round {k + 1}: local flush of {self.args.n} (no fleet) …")
                self.res["trials"].append(self.local(k))
                for deliverers in (1, 3):
                    self.say(f"round {k + 1}: {self.args.n} offered, {deliverers} deliverer(s) …")
                    self.res["trials"].append(self.fleet_trial(k, deliverers))
        finally:
            for proc in list(self.relays):
                with contextlib.suppress(Exception):
                    self.stop(proc)
            self.redis.stop()
            self.res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
            self.res["seconds"] = round(time.monotonic() - self.started, 1)
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.summarize()

    def summarize(self) -> None:
        trials = self.res["trials"]

        def med(kind: str, key: str, deliverers: int | None = None) -> float:
            rows = [t for t in trials if t["kind"] == kind and t.get("deliverers") == deliverers]
            return round(statistics.median(t[key] for t in rows), 2)

        one, three = med("fleet", "per_s", 1), med("fleet", "per_s", 3)
        local = med("local", "per_s")
        self.res["summary"] = {
            "local_per_s": local,
            "fleet_1_per_s": one,
            "fleet_3_per_s": three,
            "fleet_1_in_file_per_s": med("fleet", "per_s_in_file", 1),
            "fleet_3_in_file_per_s": med("fleet", "per_s_in_file", 3),
            "fleet_1_window_per_s": med("fleet", "per_s_window", 1),
            "fleet_3_window_per_s": med("fleet", "per_s_window", 3),
            "ratio_3_vs_1_window": round(
                med("fleet", "per_s_window", 3) / med("fleet", "per_s_window", 1), 2
            ),
            "ratio_3_vs_1": round(three / one, 2),
            "ratio_1_vs_local": round(one / local, 2),
            "first_delivery_s_1": med("fleet", "first_delivery_s", 1),
            "first_delivery_s_3": med("fleet", "first_delivery_s", 3),
            "exactly_once": all(t["exactly_once"] for t in trials),
            "clean_exits": all(
                r["code"] == 0 and not r["traceback"]
                for t in trials
                for r in (t["relays"] if "relays" in t else [t["relay"]])
            ),
        }


def report(res: dict) -> None:
    s = res["summary"]
    print(
        f"\nfleet drain: {res['n']} messages, heartbeat {res['heartbeat']}, ttl {res['ttl']}, "
        f"{res['rounds']} round(s) (medians), {res['machine']['cpus']} cpus, {res['seconds']} s"
    )
    print(f"  {'case':<34} {'msg/s':>7} {'ratio':>7} {'drain msg/s':>12} {'ratio':>7}  first delivery")
    print(f"  {'local flush, one relay, no fleet':<34} {s['local_per_s']:>7.1f} {'':>7} {'':>12} {'':>7}")
    for k in (1, 3):
        ratio = 1.0 if k == 1 else s["ratio_3_vs_1"]
        window = 1.0 if k == 1 else s["ratio_3_vs_1_window"]
        print(
            f"  {f'fleet, {k} deliverer' + ('s' if k > 1 else ''):<34} {s[f'fleet_{k}_per_s']:>7.1f} "
            f"{ratio:>6.2f}x {s[f'fleet_{k}_window_per_s']:>12.1f} {window:>6.2f}x  "
            f"{s[f'first_delivery_s_{k}']:.2f} s"
        )
    shares = [t["share"] for t in res["trials"] if t.get("deliverers") == 3]
    print(
        "  msg/s: from the deliverers' start (their start-up included) until the sender's journal says\n"
        "  all delivered; drain msg/s: from the first delivery to the last id in the file; ratios\n"
        f"  against 1 deliverer. 1 deliverer vs the local flush: {s['ratio_1_vs_local']:.2f}x."
        f" Three deliverers' shares: {shares}"
    )
    print(f"exactly once (file, sender's journal, stream empty): {'yes' if s['exactly_once'] else 'NO'}")
    print(f"every relay stopped with exit 0 and no traceback: {'yes' if s['clean_exits'] else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="messages per trial (default 300; --quick 60)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the three cases (default 3)")
    ap.add_argument("--heartbeat", default="500ms")
    ap.add_argument("--ttl", default="2s")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 60 messages, one round")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = ap.parse_args()
    args.n = args.n or (60 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 3)
    bench = Bench(args)
    bench.run()
    if args.json:
        print(json.dumps(bench.res, indent=1))
    else:
        report(bench.res)
    s = bench.res["summary"]
    sys.exit(0 if s["exactly_once"] and s["clean_exits"] else 1)


if __name__ == "__main__":
    main()
