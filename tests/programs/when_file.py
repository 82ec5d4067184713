"""Succeeds only while FLAG_FILE exists (a route that is down until a test brings it up).

    when_file.py FLAG_FILE OUT_FILE [SECONDS]
On success (after SECONDS, when given: a slow delivery) appends the message to OUT_FILE;
otherwise exits 75 (try again later).
"""

import sys
import time
from pathlib import Path

flag, out = Path(sys.argv[1]), Path(sys.argv[2])
body = sys.stdin.read()
if not flag.exists():
    sys.exit(75)
if len(sys.argv) > 3:
    time.sleep(float(sys.argv[3]))
with out.open("a") as f:
    f.write(body + "\n")
