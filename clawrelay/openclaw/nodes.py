"""Reading the gateway's `node.list`: which entry routes.yaml means, and whether it is approved."""

from __future__ import annotations

from typing import Any

Node = dict[str, Any]


def matching(nodes: list[Node], name: str) -> list[Node]:
    """The nodes a routes.yaml `node.id` names: by node id or by display name."""
    return [n for n in nodes if name in (n.get("nodeId"), n.get("displayName"))]


def known(nodes: list[Node]) -> str:
    """The nodes there are, for an error message."""
    return ", ".join(sorted(str(n.get("displayName") or n.get("nodeId")) for n in nodes)) or "none"


def approval(node: Node) -> str:
    """`approved`, `pending`, …; gateways that predate `approvalState` say only `paired`."""
    return node.get("approvalState") or ("approved" if node.get("paired") else "unknown")
