"""Hangs, with a child of its own, so tests can see a whole process group killed.

    hang.py PIDFILE [SECONDS]
Writes "parent_pid child_pid" to PIDFILE once both run, then sleeps.
"""

import os
import subprocess
import sys
import time

seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 300
child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(tmp, sys.argv[1])
time.sleep(seconds)
