"""The test harness's ports (tests/peer.py `free_port`): every server a test starts relies on them.

A CI run was lost to `free_port` handing one port to a gateway and to its own fake model (two
`bind(0)` in a row may return the same port), so the gateway exited at start."""

from __future__ import annotations

import socket
from pathlib import Path

import peer
import pytest


def test_a_port_is_never_handed_out_twice_in_one_process() -> None:
    ports = [peer.free_port() for _ in range(1500)]
    assert len(set(ports)) == len(ports)


def test_ports_are_outside_the_kernels_ephemeral_range() -> None:
    """An outgoing connection (or another worker's bind(0)) can then never take one meanwhile."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    if not peer._own_ports():
        pytest.skip(f"the ephemeral range {low}-{high} leaves no room below or above it")
    ports = [peer.free_port() for _ in range(50)]
    assert all(not low <= port <= high for port in ports), ports


def test_workers_draw_from_slices_that_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = []
    for worker in ("gw0", "gw1", "gw2", ""):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(peer._own_ports()))
    for i, one in enumerate(slices):
        assert one
        for other in slices[i + 1 :]:
            assert not one & other


def test_a_port_someone_holds_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # bound, not listening: still nobody else's to take
        port = held.getsockname()[1]
        monkeypatch.setattr(peer, "_own_ports", lambda: range(port, port + 2))
        monkeypatch.setattr(peer, "_GIVEN", set())
        assert peer.free_port() != port
