"""Fails with EXIT_CODE the first N times it runs (counted in COUNTER_FILE), then succeeds.

flaky.py COUNTER_FILE N EXIT_CODE
"""

import sys
from pathlib import Path

counter, n, code = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
runs = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(runs + 1))
sys.stdin.read()
sys.exit(code if runs < n else 0)
