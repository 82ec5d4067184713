"""routes.yaml for the remote-hands tests: one host per carrier, each reaching this same machine.

`box` over the real sshd, `xiaom` as the real node host on the session gateway, `here` locally.
They share one workspace, so a test can read on this machine what arrived "remotely".
"""

from __future__ import annotations

import textwrap

from conftest import Env
from peer import Gateway
from sshd import Sshd

GW_TOKEN_ENV = "TEST_GW_TOKEN"


def remote_routes(
    env: Env,
    *,
    sshd: Sshd | None = None,
    gateway: Gateway | None = None,
    node_extra: str = "",
    ssh_extra: dict[str, str] | None = None,
    host_extra: str = "",
    targets: str = "",
) -> None:
    hosts = [f'  here: {{local: true, workspace: "{env.workspace}"{host_extra}}}']
    gateways = ""
    if sshd is not None:
        hosts.append(
            f'  box: {{ssh: {sshd.routes_entry(**(ssh_extra or {}))}, workspace: "{env.workspace}"'
            f"{host_extra}}}"
        )
    if gateway is not None:
        gateways = f'gateways:\n  gw: {{url: "{gateway.url}", token: "${{{GW_TOKEN_ENV}}}"}}\n'
        hosts.append(
            f'  xiaom: {{node: {{gateway: gw, id: xiaom{node_extra}}}, workspace: "{env.workspace}", '
            f'openclaw: "{gateway.bin_dir / "openclaw"}"{host_extra}}}'
        )
    body = "version: 1\nself: tester\n" + gateways + "hosts:\n" + "\n".join(hosts) + "\ntargets:\n"
    body += (
        textwrap.indent(textwrap.dedent(targets), "  ")
        if targets
        else "  t: {host: here, chain: [memory_file]}\n"
    )
    env.routes(body)
