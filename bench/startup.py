#!/usr/bin/env python3
"""Startup cost of clawrelay: `--help` and a memory_file send, against `python -c pass`.

Prints, for each case, the median wall time and the median peak RSS of the process over N runs
(interleaved, so machine drift hits every case alike), and each as a ratio to the floor measured
in the same run. "stack imports" is `import typer, msgspec, yaml, asyncio, sqlite3, tenacity`:
what the chosen libraries cost before clawrelay runs a line of its own.

    python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import os
import shutil
import sys

from measure import bench_setup, medians


def main() -> None:
    runs, exe, tmp = bench_setup(__doc__, "startup", 15)

    (tmp / "ws").mkdir()
    (tmp / "routes.yaml").write_text(
        f'version: 1\nself: bench\nhosts: {{here: {{local: true, workspace: "{tmp / "ws"}"}}}}\n'
        "targets: {peer: {host: here, chain: [memory_file: {}]}}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "CLAWRELAY_HOME": str(tmp / "state"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    py = sys.executable
    cases = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "stack imports": [py, "-c", "import typer, msgspec, yaml, asyncio, sqlite3, tenacity"],
        "clawrelay --help": [exe, "--help"],
        "clawrelay send (memory_file)": [exe, "send", "peer", "benchmark message"],
    }
    med = medians({name: (argv, env) for name, argv in cases.items()}, runs, str(tmp))
    floor_t, floor_m = med["python -c pass (floor)"]
    print(
        f"{runs} runs each, interleaved; python {sys.version.split()[0]} on {os.uname().machine}, "
        f"{os.cpu_count()} cpus"
    )
    print(f"{'case':<30} {'median wall':>12} {'x floor':>8} {'peak RSS':>10} {'x floor':>8}")
    for name, (t, m) in med.items():
        print(f"{name:<30} {t * 1000:>9.0f} ms {t / floor_t:>8.1f} {m / 1024:>7.1f} MB {m / floor_m:>8.1f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
