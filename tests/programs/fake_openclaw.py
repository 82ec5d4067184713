"""A stand-in for the `openclaw` CLI, for the cases a real 2026.9 CLI cannot be made to show here.

fake_openclaw.py MODE agent ...   MODE: embedded (prints an embedded run's JSON, says so on
                                  stderr), hang-after-result (prints a gateway result, never exits)
"""

import json
import sys
import time

mode = sys.argv[1]
if mode == "embedded":
    print("Gateway agent failed; falling back to embedded agent", file=sys.stderr)
    print(json.dumps({"payloads": [{"text": "answered by nobody"}], "meta": {"durationMs": 5}}))
elif mode == "hang-after-result":
    print(json.dumps({"runId": "r-1", "status": "ok", "result": {"payloads": [{"text": "ACK"}]}}), flush=True)
    time.sleep(600)
