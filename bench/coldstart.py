#!/usr/bin/env python3
"""Cold start (issue 15, part 5): each clawrelay command against its floor, in one run.

Starts a real OpenClaw gateway with a paired node host (tests/peer.py; Node and openclaw from
scripts/install-openclaw.sh) and a real OpenSSH server (tests/sshd.py; scripts/install-sshd.sh),
all on loopback, then runs every case below N times, interleaved (each case once to warm the
caches, then N rounds of all of them, so drift hits every case alike), and prints the median
wall time, CPU time and peak RSS of each (CPU time moves far less than wall time when the
machine is busy), then the issue's table, each ratio taken in this same run:

  clawrelay call URL health --json          / raw_health.py (connect, `health`, exit)   goal <= 1.3x
  clawrelay call GW health --json (named)   / raw_health.py                             goal <= 1.3x
  clawrelay send T x --via memory_file      ms, and / python -c pass      filer's goal <= 0.12 s
  clawrelay --help                          ms, and / python -c pass      filer's goal <= 0.06 s
  clawrelay exec HOST --via ssh -- true     / ssh HOST true (OpenSSH, same server and key) <= 1.3x
  clawrelay exec HOST --via node -- true    / bench/raw_node_invoke.py (connect,
                                              node.invoke system.run `true`, exit)       <= 1.3x

The floor raw_health.py is ../shared/bench/raw_health.py when that exists, else bench/raw_health.py
(a copy). The absolute goals were set on the filer's machine, so the table gives the time here and
its ratio to `python -c pass` here, with the filer's goal beside it. It measures whatever is in
the tree: the clawrelay installed next to this python (pip install -e .). A case that fails is
shown as failed, with its error, and the others are still measured.

--profile adds, for each Python case, where its imports go (`python -X importtime`, self time
summed by package, clawrelay by subpackage; each the least of 5 runs, which a busy machine
disturbs least): its total, and the packages it imports beyond its floor, the largest first.
importtime's own overhead inflates these, so read them as shares, not as wall time.

    .venv/bin/python bench/coldstart.py [--runs 9] [--profile]   (2-4 minutes, 1 GB, on 2 cores)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from measure import clawrelay_exe, medians

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
SHARED_FLOOR = HERE.parent.parent / "shared" / "bench" / "raw_health.py"

# (row of the table, case, the floor it is divided by, goal as a ratio to that floor or None, goal)
GOALS: list[tuple[str, str, str, float | None, str]] = [
    ("clawrelay call URL health --json", "call URL", "raw_health", 1.3, "<= 1.3x raw_health"),
    ("clawrelay call GW health --json", "call GW", "raw_health", 1.3, "<= 1.3x raw_health"),
    ("clawrelay send T x --via memory_file", "send", "python -c pass", None, "<= 120 ms on the filer's"),
    ("clawrelay --help", "--help", "python -c pass", None, "<= 60 ms on the filer's"),
    ("clawrelay exec HOST --via ssh -- true", "exec ssh", "ssh HOST true", 1.3, "<= 1.3x ssh"),
    (
        "clawrelay exec HOST --via node -- true",
        "exec node",
        "raw_node_invoke",
        1.3,
        "<= 1.3x raw_node_invoke",
    ),
]


def floor_script() -> Path:
    """raw_health.py: the shared one when this checkout has ../shared beside it, else bench's copy."""
    return SHARED_FLOOR if SHARED_FLOOR.is_file() else HERE / "raw_health.py"


def main() -> None:
    import argparse
    import tempfile

    from peer import Gateway, openclaw_bin
    from sshd import Sshd, sshd_bin

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9, help="rounds of every case (default 9)")
    ap.add_argument("--profile", action="store_true", help="also show where each case's imports go")
    args = ap.parse_args()
    runs, exe, tmp = args.runs, clawrelay_exe(), Path(tempfile.mkdtemp(prefix="clawrelay-bench-coldstart-"))
    py, floor = sys.executable, floor_script()
    profiles: dict[str, dict[str, float]] = {}
    cpu: dict[str, float] = {}
    gw = Gateway(openclaw_bin(), tmp / "gw")
    ssh = Sshd(tmp / "sshd")
    try:
        gw.start()
        node_id = gw.start_node("xiaom")
        ssh.start(sshd_bin())
        (tmp / "ws").mkdir()
        local = tmp / "local.yaml"  # the send case: one local host, as a bare install has
        local.write_text(
            f'version: 1\nself: bench\nhosts: {{here: {{local: true, workspace: "{tmp / "ws"}"}}}}\n'
            "targets: {peer: {host: here, chain: [memory_file: {}]}}\n"
        )
        remote = tmp / "remote.yaml"
        remote.write_text(
            "version: 1\nself: bench\n"
            f'gateways:\n  gw: {{url: "{gw.url}", token: "${{OPENCLAW_GATEWAY_TOKEN}}"}}\n'
            f'hosts:\n  xiaom: {{node: {{gateway: gw, id: "{node_id}"}}}}\n'
            f"  box: {{ssh: {ssh.routes_entry()}}}\n"
            "targets:\n  t: {host: box, chain: [memory_file]}\n"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "OPENCLAW_GATEWAY_TOKEN": gw.token,
            "CLAWRELAY_HOME": str(tmp / "state"),
        }
        argvs = {
            "python -c pass": [py, "-c", "pass"],
            "raw_health": [py, str(floor), gw.url, gw.token],
            "call URL": [exe, "call", gw.url, "health", "--json"],
            "call GW": [exe, "call", "gw", "health", "--json", "-c", str(remote)],
            "send": [exe, "send", "peer", "benchmark message", "--via", "memory_file", "-c", str(local)],
            "--help": [exe, "--help"],
            "ssh HOST true": [shutil.which("ssh") or "/usr/bin/ssh", *ssh.ssh_argv("true")[1:]],
            "exec ssh": [exe, "exec", "box", "--via", "ssh", "-c", str(remote), "--", "true"],
            "raw_node_invoke": [py, str(HERE / "raw_node_invoke.py"), gw.url, gw.token, node_id, "true"],
            "exec node": [exe, "exec", "xiaom", "--via", "node", "-c", str(remote), "--", "true"],
        }
        failed = {name: why for name, argv in argvs.items() if (why := failure(argv, env, tmp))}
        cases = {name: (argv, env) for name, argv in argvs.items() if name not in failed}
        med = medians(cases, runs, str(tmp), cpu)
        if args.profile:
            python = {name: argv for name, (argv, _) in cases.items() if _is_python(argv[0])}
            profiles = {name: import_profile(argv, env, tmp) for name, argv in python.items()}
    finally:
        ssh.stop()
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(med, cpu, failed, runs, floor)
    if profiles:
        report_imports(profiles)


def failure(argv: list[str], env: dict[str, str], cwd: Path) -> str | None:
    """Why one run of a case fails (its exit code and last line of stderr), or None: a case that
    fails is left out of the timings and shown as failed, and the others are still measured."""
    import subprocess

    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode == 0:
        return None
    last = (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()[-1]
    return f"exit {p.returncode}: {last[:300]}"


def report(
    med: dict[str, tuple[float, int]], cpu: dict[str, float], failed: dict[str, str], runs: int, floor: Path
) -> None:
    """Every case's medians, then the goals' table."""
    print(
        f"{runs} runs each, interleaved; python {sys.version.split()[0]} on {os.uname().machine}, "
        f"{os.cpu_count()} cpus; real gateway, node host and sshd on loopback; floor {floor}"
    )
    print(f"{'case':<18} {'median wall':>12} {'CPU (user+sys)':>15} {'peak RSS':>10}")
    for name, (t, m) in med.items():
        print(f"{name:<18} {t * 1000:>9.0f} ms {cpu[name] * 1000:>12.0f} ms {m / 1024:>7.1f} MB")
    for name, why in failed.items():
        print(f"{name:<18} FAILED ({why})")
    print()
    print(f"{'command':<40} {'median':>8} {'ratio':>7}  {'to':<16} {'goal':<26} met")
    for row, case, base, goal, says in GOALS:
        if case not in med or base not in med:
            print(f"{row:<40} {'failed':>8} {'':>7}  {base:<16} {says:<26} no")
            continue
        t, b = med[case][0], med[base][0]
        met = "—" if goal is None else ("yes" if t / b <= goal else "no")
        print(f"{row:<40} {t * 1000:>5.0f} ms {t / b:>6.2f}x  {base:<16} {says:<26} {met}")


def _is_python(path: str) -> bool:
    """A Python interpreter, or a script that one runs (the installed `clawrelay`)."""
    if Path(path).name.startswith("python"):
        return True
    with open(path, "rb") as f:
        return b"python" in f.readline()


def import_profile(argv: list[str], env: dict[str, str], cwd: Path, runs: int = 5) -> dict[str, float]:
    """Milliseconds of import self time by package (clawrelay by subpackage), the least of
    `runs` runs of `python -X importtime`."""
    import subprocess

    script = argv[1:] if Path(argv[0]).name.startswith("python") else argv
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        p = subprocess.run(
            [sys.executable, "-X", "importtime", *script], env=env, cwd=cwd, capture_output=True, text=True
        )
        by: dict[str, float] = {}
        for line in p.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _, name = line[len("import time:") :].split("|")
            parts = name.strip().split(".")
            key = ".".join(parts[:2]) if parts[0] == "clawrelay" and len(parts) > 1 else parts[0]
            by[key] = by.get(key, 0.0) + int(own) / 1000
        samples.append(by)
    keys = {k for by in samples for k in by}
    return {k: min(by.get(k, 0.0) for by in samples) for k in keys}


def report_imports(profiles: dict[str, dict[str, float]], top: int = 8) -> None:
    """Each clawrelay case's imports: the total, and what it imports beyond its floor."""
    floors = {base for _, _, base, _, _ in GOALS}
    print()
    print("imports (python -X importtime: self ms by package, least of 5 runs; importtime inflates them)")
    for name, by in profiles.items():
        if name in floors:
            print(f"{name:<18} {sum(by.values()):>5.0f} ms  " + _top(by, top))
    for _, case, base, _, _ in GOALS:
        if case not in profiles:
            continue
        floor = profiles.get(base, {})
        extra = {k: v - floor.get(k, 0.0) for k, v in profiles[case].items()}
        total = sum(profiles[case].values())
        print(f"{case:<18} {total:>5.0f} ms  beyond {base}: " + _top(extra, top))


def _top(by: dict[str, float], n: int) -> str:
    rows = sorted(((v, k) for k, v in by.items() if v >= 0.5), reverse=True)[:n]
    return ", ".join(f"{k} {v:.0f}" for v, k in rows)


if __name__ == "__main__":
    main()
