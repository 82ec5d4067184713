"""Proxy variables, removed in one place.

A proxy set for a person's browser or shell (often a dead one, on a laptop that moved) must not
break a relay between two machines on a tailnet. Local programs get an environment without them;
remote ones shed them inside the command itself, because no carrier may pass them empty: recent
OpenClaw node hosts refuse `system.run` with any proxy variable in its `env` (HTTP_PROXY is one of
their blocked override keys, whatever its value).

Two forms, one per kind of host:

- `wrap`: `env -u HTTP_PROXY … -- argv`, for ssh and for a node's approval flow (a human, or
  `approve: allow-once`, approves that exact argv);
- `shell_wrap`: `sh -c 'unset HTTP_PROXY …; exec ARGV'`, what a node runs by default. Under an
  exec allowlist, OpenClaw judges `env` with options as a command of its own (it never matches an
  entry for the program behind it), but it judges the commands of a `sh -c` line one by one, and
  `unset` is none: allowlisting the program itself is enough. The argv is quoted word by word
  (the shell sees each element as one literal word) and run with `exec`, so the program is the
  one on PATH, never a builtin of the same name.

A host can opt out with `strip_proxy: false` when its commands really need the proxy.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

UNSET = "unset " + " ".join(PROXY_VARS)


def wrap(argv: Sequence[str], *, strip: bool = True) -> list[str]:
    """argv run through `env`, without the proxy variables."""
    if not strip:
        return list(argv)
    unset = [arg for var in PROXY_VARS for arg in ("-u", var)]
    return ["env", *unset, "--", *argv]  # `--`: an argv[0] starting with "-" stays the program


def shell_wrap(argv: Sequence[str], *, strip: bool = True) -> list[str]:
    """argv run by `sh` after it unset the proxy variables (see the module's note)."""
    if not strip:
        return list(argv)
    if argv[0].startswith("-"):  # dash's `exec` takes no `--`: such a name goes through `env --`
        return wrap(argv)
    return ["sh", "-c", f"{UNSET}\nexec {shlex.join(argv)}"]


def local_env(*, strip: bool = True) -> dict[str, str]:
    """This process's environment, without the proxy variables unless the host keeps them."""
    return {k: v for k, v in os.environ.items() if not (strip and k in PROXY_VARS)}
