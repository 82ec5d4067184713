"""The fix doctor prints under a failure: the exact command to run, or the key to edit.

A reason alone says what is wrong; the fix says what to do about it on this setup, named by its
own gateways, hosts, token variables and request ids, so it can be copied as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clawrelay.errors import ClawrelayError, ConfigError
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.carriers.base import Carrier
    from clawrelay.carriers.ssh import SshCarrier
    from clawrelay.config.model import Config
    from clawrelay.openclaw import GatewayError


def gateway_fix(e: GatewayError, name: str, ref: str | None) -> str:
    """What to run or edit when connecting to gateway `name` failed this way."""
    import websockets

    url = f"gateways.{name}.url"
    upgrade = isinstance(e.__cause__, websockets.WebSocketException)  # failed before any frame
    if upgrade and e.reason in (Reason.REJECTED, Reason.BAD_RESPONSE):  # not a gateway there
        return (
            f"set {url} to the OpenClaw gateway's WebSocket address, ws://HOST:PORT (on its machine, "
            "openclaw gateway status shows the port; 18789 unless changed): what answers there now "
            "is not a gateway"
        )
    if e.reason in (
        Reason.CONNECTION_REFUSED,
        Reason.UNREACHABLE,
        Reason.HANDSHAKE_TIMEOUT,
        Reason.UNAVAILABLE,
    ):
        return f"start the gateway (on its machine: openclaw gateway status), or correct {url}"
    if e.reason in (Reason.GATEWAY_RESTARTING, Reason.CONNECTION_LOST):
        return "run doctor again in a minute; if it stays: on the gateway's machine, openclaw gateway status"
    if e.reason == Reason.TLS:
        return f"check {url}: wss:// needs a certificate this machine trusts; a gateway without TLS is ws://"
    if e.reason == Reason.AUTH:
        return (
            f"export {ref or 'OPENCLAW_GATEWAY_TOKEN'}=<gateway.auth.token from that gateway's openclaw.json>"
        )
    if e.reason == Reason.PAIRING_REQUIRED:
        rid = e.details.get("requestId")
        return f"on the gateway's machine: openclaw devices approve {rid or '<id: openclaw devices list>'}"
    if e.reason == Reason.MISSING_SCOPE:
        return "on the gateway's machine: openclaw devices list; approve this device with operator.write"
    if e.reason in (Reason.PROTOCOL_MISMATCH, Reason.UNKNOWN_METHOD):
        return "update OpenClaw on the gateway's machine: openclaw update"
    return "on the gateway's machine: openclaw logs shows why it refused"


def carrier_failure(e: ClawrelayError, c: Carrier, host: str, config: Config) -> ClawrelayError:
    """A carrier's failure, with the fix for that carrier of that host: the one its raiser knew,
    else one made from what failed."""
    gateway = getattr(c, "gateway_name", None)
    token = config.gateways[gateway].token if gateway else None
    fix = e.fix or _carrier_fix(e, host, c, token.ref if token else None)
    return ClawrelayError(e.message, reason=e.reason, fix=fix)


def _carrier_fix(e: ClawrelayError, host: str, c: Carrier, token_ref: str | None) -> str | None:
    """What to run or edit when carrier `c` could not reach or use `host` (and its raiser did not say)."""
    from clawrelay.carriers.ssh import SshCarrier
    from clawrelay.openclaw import GatewayError

    if e.reason == Reason.REMOTE_ERROR:  # the home folder unknown, or the node's own error
        return f"on {host}: printenv HOME must print the home folder in a non-interactive command"
    if isinstance(c, SshCarrier):
        return _ssh_fix(e, host, c)
    if isinstance(e, GatewayError):
        gateway = getattr(c, "gateway_name", "GATEWAY")
        if e.details.get("code") == "PAIRING_CHANGED":  # no current pairing for that node id
            return (
                f"check that openclaw nodes status on {gateway}'s machine lists hosts.{host}.node.id; "
                f"if it does: on {host}, openclaw node restart (or rerun openclaw node run), then on "
                f"{gateway}'s machine: openclaw nodes pending, openclaw nodes approve <requestId>"
            )
        return gateway_fix(e, gateway, token_ref)
    node = getattr(c, "ref", None)
    if e.reason == Reason.NODE_OFFLINE:
        return f"on {host}: start the node host (openclaw node restart, or rerun openclaw node run)"
    if e.reason in (Reason.DENIED, Reason.APPROVAL_TIMEOUT):
        selector = node.id if node else host
        return f"allow it on the node: openclaw approvals allowlist add --node {selector} <program>"
    if e.reason == Reason.NOT_FOUND and node is not None:
        return f"check hosts.{host}.node.id against openclaw nodes status on the gateway's machine"
    return None


def _ssh_fix(e: ClawrelayError, host: str, c: SshCarrier) -> str | None:
    """The ssh carrier's failures: the OpenSSH command that shows the same failure, and what to edit."""
    import socket

    from clawrelay.carriers.ssh import keyscan_command, ssh_command

    ref, see = c.ref, f"see why: {ssh_command(c.ref, 'true')}"
    if e.reason == Reason.HOST_KEY_UNKNOWN:  # the carrier says it (`fix`); this is for one that did not
        return keyscan_command(ref)
    if isinstance(e, ConfigError):
        return f"correct hosts.{host}.ssh.key or hosts.{host}.ssh.known_hosts in routes.yaml"
    if e.reason == Reason.CONNECTION_REFUSED:
        return (
            f"nothing listens for ssh there: start sshd on {ref.host}, or correct hosts.{host}.ssh "
            f"(host, port) in routes.yaml; {see}"
        )
    if e.reason == Reason.UNREACHABLE and isinstance(e.__cause__, socket.gaierror):
        return (
            f"check hosts.{host}.ssh.host in routes.yaml: {ref.host} is not a name this machine "
            f"resolves (nor a Host of ~/.ssh/config); {see}"
        )
    if e.reason == Reason.UNREACHABLE:
        return (
            f"check that {ref.host} is up and reachable from here (VPN or tailnet connected, "
            f"firewall), and hosts.{host}.ssh (host, port) in routes.yaml; {see}"
        )
    if e.reason == Reason.AUTH:
        key = f"-i {ref.key} " if ref.key else ""
        port = f"-p {ref.port} " if ref.port else ""
        target = f"{ref.user}@{ref.host}" if ref.user else ref.host
        return f"authorize the key there: ssh-copy-id {key}{port}{target}; {see}"
    return f"{see.replace('ssh ', 'ssh -v ', 1)}"
