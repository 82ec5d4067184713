"""Proxy variables, removed in one place.

A proxy set for a person's browser or shell (often a dead one, on a laptop that moved) must not
break a relay between two machines on a tailnet. Recent gateways even refuse `system.run` when
proxy variables are passed as `env`, so remote commands shed them inside the command itself:
`env -u HTTP_PROXY … argv`. A host can opt out with `strip_proxy: false` when its commands
really need the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def wrap(argv: Sequence[str], *, strip: bool = True) -> list[str]:
    """argv run through `env`, without the proxy variables."""
    if not strip:
        return list(argv)
    unset = [arg for var in PROXY_VARS for arg in ("-u", var)]
    return ["env", *unset, "--", *argv]  # `--`: an argv[0] starting with "-" stays the program


def local_env(*, strip: bool = True) -> dict[str, str]:
    """This process's environment, without the proxy variables unless the host keeps them."""
    return {k: v for k, v in os.environ.items() if not (strip and k in PROXY_VARS)}
