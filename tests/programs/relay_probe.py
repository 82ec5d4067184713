"""A command-transport program for the relay tests: says where it ran, then maybe takes its time.

    relay_probe.py OUT [SECONDS] [EXIT_CODE]
Appends one JSON line to OUT (one write, so a test waiting for it reads it whole): when it
started, the message (its stdin), its pid, its ancestors' pids (parent first, up to pid 1), its
working folder, its umask and CLAWRELAY_PROBE (a variable the tests set in one environment
only); then sleeps SECONDS and exits with EXIT_CODE (0).
"""

import json
import os
import sys
import time


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold anything


def ancestors() -> list[int]:
    out, pid = [], os.getpid()
    while pid > 1:
        try:
            pid = parent(pid)
        except (OSError, ValueError, IndexError):
            break
        out.append(pid)
    return out


path = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
mask = os.umask(0)
os.umask(mask)
entry = {
    "time": time.time(),
    "body": sys.stdin.read(),
    "pid": os.getpid(),
    "ancestors": ancestors(),
    "cwd": os.getcwd(),
    "umask": mask,
    "probe": os.environ.get("CLAWRELAY_PROBE"),
}
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.write(fd, (json.dumps(entry) + "\n").encode())
os.close(fd)
time.sleep(seconds)
sys.exit(code)
