"""The routes used when no routes.yaml exists anywhere: a demo that works on a bare machine.

Target `demo` first tries a gateway on the OpenClaw default port (or `$CLAWRELAY_DEMO_GATEWAY`),
then appends to a demo
workspace under clawrelay's state dir. So the README's first command shows a real fallback on a
bare machine and a real gateway delivery where one runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SOURCE = "<embedded default>"


def demo_workspace(state: Path) -> Path:
    return state / "demo" / "workspace"


DEMO_GATEWAY_ENV = "CLAWRELAY_DEMO_GATEWAY"


def default_routes_text(state: Path) -> str:
    me = os.uname().nodename.split(".")[0] or "me"
    gateway = os.environ.get(DEMO_GATEWAY_ENV) or "ws://127.0.0.1:18789"
    return f"""\
version: 1
self: {json.dumps(me)}
defaults: {{timeout: 5s, retries: 1, deadline: 30s, on_ambiguous: continue}}
gateways:
  local: {{url: {json.dumps(gateway)}}}  # no token key: OPENCLAW_GATEWAY_TOKEN when set
hosts:
  this-machine:
    local: true
    workspace: {json.dumps(str(demo_workspace(state)))}
targets:
  demo:
    host: this-machine
    chain:
      - sessions_send: {{gateway: local, timeout: 3s}}
      - memory_file: {{}}
"""
