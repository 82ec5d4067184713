"""Wall time and peak memory of one child process, for the benchmarks in this folder.

The children are started by a small runner process of their own (this file, run with
`python -I -S`), not by the benchmark: a child's peak RSS counts the process it was forked from,
so a benchmark that has started a gateway and imported a client (tens of MB) would otherwise
lift every small case's peak RSS to its own size. The runner needs only os, sys, time and json.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def bench_setup(doc: str | None, name: str, runs: int = 10) -> tuple[int, str, Path]:
    """What every benchmark starts with: `--runs` from its command line, the clawrelay to measure,
    and a fresh temporary folder (the caller removes it)."""
    import argparse
    import tempfile
    from pathlib import Path

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=runs)
    return ap.parse_args().runs, clawrelay_exe(), Path(tempfile.mkdtemp(prefix=f"clawrelay-bench-{name}-"))


def clawrelay_exe() -> str:
    """The clawrelay installed next to this interpreter (the one being measured)."""
    import shutil
    from pathlib import Path

    exe = shutil.which("clawrelay", path=str(Path(sys.executable).parent)) or shutil.which("clawrelay")
    if not exe:
        raise SystemExit("clawrelay is not installed next to this python (pip install -e .)")
    return exe


def measure(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of one child, from its own
    rusage (not the max of all children)."""
    t0 = time.perf_counter()
    pid = _spawn(argv, env, cwd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def _spawn(argv: list[str], env: dict[str, str], cwd: str) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


Case = tuple[list[str], dict[str, str]]  # argv, environment


def medians(
    cases: dict[str, Case], runs: int, cwd: str, cpu: dict[str, float] | None = None
) -> dict[str, tuple[float, int]]:
    """Each case once to warm caches, then `runs` rounds interleaved (so drift hits all alike):
    the median wall seconds and median peak RSS (KiB) of each, measured by a fresh runner.
    `cpu`, when given, gets each case's median CPU seconds (user + system): on a busy machine it
    moves far less than wall time, though it leaves out the time spent waiting on a server."""
    import json
    import subprocess

    job = json.dumps({"cases": cases, "runs": runs, "cwd": cwd})
    p = subprocess.run(
        [sys.executable, "-I", "-S", os.path.abspath(__file__)], input=job, capture_output=True, text=True
    )
    if p.returncode != 0:
        raise SystemExit(p.stderr.strip() or f"the measuring process failed with {p.returncode}")
    out = json.loads(p.stdout)
    if cpu is not None:
        cpu.update({name: c for name, (_, _, c) in out.items()})
    return {name: (t, round(m)) for name, (t, m, _) in out.items()}


def _median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _medians_here(cases: dict[str, Case], runs: int, cwd: str) -> dict[str, list[float]]:
    for argv, env in cases.values():
        measure(argv, env, cwd)
    samples: dict[str, list[tuple[float, int, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (argv, env) in cases.items():
            samples[name].append(measure(argv, env, cwd))
    return {name: [_median([row[i] for row in rows]) for i in range(3)] for name, rows in samples.items()}


if __name__ == "__main__":  # the runner: a job as JSON on stdin, the medians as JSON on stdout
    import json

    job = json.load(sys.stdin)
    print(json.dumps(_medians_here(job["cases"], job["runs"], job["cwd"])))
