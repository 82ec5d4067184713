"""Kill the sshd session this program runs under, so its client sees the connection drop mid-command."""

import os
import signal
from pathlib import Path

pid = os.getppid()
while pid > 1:
    stat = Path(f"/proc/{pid}/stat").read_text()
    comm, ppid = stat[stat.index("(") + 1 : stat.rindex(")")], int(stat[stat.rindex(")") + 2 :].split()[1])
    if comm.startswith("sshd"):
        os.kill(pid, signal.SIGKILL)
        break
    pid = ppid
