"""Wall time and peak memory of one child process, for the benchmarks in this folder."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path


def bench_setup(doc: str | None, name: str, runs: int = 10) -> tuple[int, str, Path]:
    """What every benchmark starts with: `--runs` from its command line, the clawrelay to measure,
    and a fresh temporary folder (the caller removes it)."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=runs)
    return ap.parse_args().runs, clawrelay_exe(), Path(tempfile.mkdtemp(prefix=f"clawrelay-bench-{name}-"))


def clawrelay_exe() -> str:
    """The clawrelay installed next to this interpreter (the one being measured)."""
    exe = shutil.which("clawrelay", path=str(Path(sys.executable).parent)) or shutil.which("clawrelay")
    if not exe:
        raise SystemExit("clawrelay is not installed next to this python (pip install -e .)")
    return exe


def measure(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child, from its own rusage (not the max of all children)."""
    t0 = time.perf_counter()
    pid = _spawn(argv, env, cwd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss


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


def medians(cases: dict[str, Case], runs: int, cwd: str) -> dict[str, tuple[float, int]]:
    """Each case once to warm caches, then `runs` rounds interleaved (so drift hits all alike):
    the median wall seconds and median peak RSS (KiB) of each."""
    for argv, env in cases.values():
        measure(argv, env, cwd)
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (argv, env) in cases.items():
            samples[name].append(measure(argv, env, cwd))
    return {
        name: (statistics.median(t for t, _ in rows), statistics.median(m for _, m in rows))
        for name, rows in samples.items()
    }
