"""Proxy variables, removed in one place.

A proxy set for a person's browser or shell (often a dead one, on a laptop that moved) must not
break a relay between two machines on a tailnet. Recent gateways even refuse `system.run` when
proxy variables are passed as `env`, so remote commands shed them inside the command itself:
`env -u HTTP_PROXY … argv`. A host can opt out with `strip_proxy: false` when its commands
really need the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def wrap(argv: Sequence[str], *, strip: bool = True, setenv: Mapping[str, str] | None = None) -> list[str]:
    """argv run through `env`, without the proxy variables and with `setenv` added."""
    unset = [arg for var in PROXY_VARS for arg in ("-u", var)] if strip else []
    assign = [f"{k}={v}" for k, v in (setenv or {}).items()]
    if not unset and not assign:
        return list(argv)
    return ["env", *unset, "--", *assign, *argv]  # `--`: an argv[0] starting with "-" stays the program


def local_env(*, strip: bool = True, base: Mapping[str, str] | None = None,
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    if strip:
        for var in PROXY_VARS:
            env.pop(var, None)
    env.update(extra or {})
    return env
