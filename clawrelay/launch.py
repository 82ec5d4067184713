"""The `clawrelay` console script: to the relay when one answers, else the command in-process.

Standard library only until it is known which: a forwarded command never imports click, typer,
the config model or websockets (see `clawrelay.relay.client`).
"""

from __future__ import annotations

import sys


def main() -> int:
    from clawrelay.relay.client import forward, without_root_flag

    argv = sys.argv[1:]
    try:
        code = forward(argv)
    except KeyboardInterrupt:  # before the relay took the command: nothing ran
        print("clawrelay: interrupted", file=sys.stderr)
        return 130
    if code is not None:
        return code
    from clawrelay.cli import main as run_here

    return run_here(without_root_flag(argv))
