"""A command-transport program for tests: appends what it got to a file, then exits with a code.

    record.py FILE [EXIT_CODE]
Writes one JSON line: the stdin text, the CLAWRELAY_* variables and its pid.
"""

import json
import os
import sys

path, code = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
body = sys.stdin.read()
entry = {
    "body": body,
    "pid": os.getpid(),
    **{k: v for k, v in os.environ.items() if k.startswith("CLAWRELAY_")},
}
with open(path, "a") as f:
    f.write(json.dumps(entry) + "\n")
sys.exit(code)
