"""The fleet's shared outbox under faults, for real: a Redis server and several `clawrelay serve`
processes, each with its own state dir and routes.yaml, on one machine.

- the leader's relay killed with SIGKILL while it delivers one message and holds others it read
  and never handled: a new leader within ttl + a heartbeat, the others delivered once by another
  relay, and the one it was delivering never sent again but settled `ambiguous`, said so;
- Redis restarted (SIGTERM) in the middle of a drain, and killed (SIGKILL) in the middle of one:
  nothing lost, nothing delivered twice;
- a relay slow on one message does not deliver again, afterwards, what it had read and another
  relay delivered meanwhile; a result published twice by one relay (its first reply lost) reads
  as one delivery. Both failed on the first version of the shared outbox.

"Exactly once, or ambiguous and said so: never silently twice." Every delivery is one line
`ID NODE` appended to a file by the `command` transport, so a count is exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Env, RelayProcess, new_env
from peer import free_port
from redis_server import RedisServer, redis_bin

from clawrelay.fleet import lua

pytestmark = pytest.mark.integration  # Redis and relays, started by the tests themselves

HEARTBEAT = 0.5
TTL = 2.0
TARGET = "t"
PW_VAR = "FLEET_TEST_PW"
GW_VAR = "FLEET_TEST_GW_TOKEN"
TAG = "clawrelay-fleet-fault"  # the $0 (or first argument) of every program the relays run here


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy (and return it), or fail saying what was awaited."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(step)


class Node:
    """One machine of the fleet: its own state dir, routes.yaml and (once started) relay."""

    def __init__(self, fleet: Fleet, name: str, chain: str, extra: str = "", port: int | None = None) -> None:
        folder = fleet.tmp / name
        folder.mkdir()
        self.name = name
        self.env: Env = new_env(folder)
        self.env.vars[PW_VAR] = fleet.redis.password
        self.env.vars[GW_VAR] = "not-a-real-token"
        self.env.routes(
            textwrap.dedent(f"""
            version: 1
            self: {name}
            """)
            + textwrap.dedent(extra)
            + textwrap.dedent(f"""
            fleet:
              redis: "redis://:${{{PW_VAR}}}@127.0.0.1:{port or fleet.redis.port}/0"
              heartbeat: {round(HEARTBEAT * 1000)}ms
              ttl: {round(TTL * 1000)}ms
            targets:
              {TARGET}: {{chain: [{chain}]}}
            """)
        )
        self.relay: RelayProcess | None = None
        self.stderr = ""

    def start(self) -> Node:
        self.relay = RelayProcess(self.env)
        return self

    @property
    def pid(self) -> int:
        assert self.relay is not None
        return self.relay.pid

    def stop(self) -> int:
        """SIGTERM; its exit status (its stderr in `self.stderr`)."""
        assert self.relay is not None
        code, _, self.stderr = self.relay.stop()
        return code

    def kill(self) -> None:
        assert self.relay is not None
        os.kill(self.relay.pid, signal.SIGKILL)
        self.relay.proc.wait(30)

    def run(self, *args: str) -> Any:
        return self.env.run(*args, timeout=60)

    def log(self) -> dict[str, dict[str, Any]]:
        r = self.run("log", "--json", "--last", "1000")
        assert r.code == 0, r.err
        return {rec["id"]: rec for rec in r.json()}


class Fleet:
    """Nodes on one Redis, a file every delivery appends `ID NODE` to, and the cleanup."""

    def __init__(self, tmp: Path, redis: RedisServer) -> None:
        self.tmp, self.redis = tmp, redis
        self.out = tmp / "delivered.txt"
        self.groups = tmp / "programs.pgid"  # the process group of every program a relay ran
        self.nodes: list[Node] = []
        self.dead_port = free_port()  # a gateway nobody runs: connection refused, probe down

    def sender(self, name: str) -> Node:
        """A node whose only way to the target is a gateway that is down (its probes say so)."""
        node = Node(
            self,
            name,
            "sessions_send: {gateway: dead, retries: 0, timeout: 2s}",
            extra=f"""
            gateways:
              dead: {{url: "ws://127.0.0.1:{self.dead_port}", token: "${{{GW_VAR}}}"}}
            """,
        )
        self.nodes.append(node)
        return node

    def deliverer(
        self,
        name: str,
        script: str = "",
        *,
        argv0: Path | None = None,
        timeout: str = "30s",
        port: int | None = None,
    ) -> Node:
        """A node that reaches the target with `command`: a shell line that appends `ID NAME`
        to the out file (then runs `script`); or the program `argv0` (written by the test).
        `port`: where it finds Redis, when not at the fleet's Redis itself (a proxy)."""
        if argv0 is None:
            line = f'{self._group_line()}; echo "$CLAWRELAY_ID {name}" >> "{self.out}"; {script}'
            argv = ["sh", "-c", line, TAG]
        else:
            argv = [str(argv0), TAG]
        step = f"command: {{argv: {json.dumps(argv)}, retries: 0, timeout: {timeout}}}"
        node = Node(self, name, step, port=port)
        self.nodes.append(node)
        return node

    def program(self, path: Path, name: str, then: str) -> Path:
        """An executable script that records its pid, appends `ID NAME`, then runs `then`."""
        path.write_text(
            f'#!/bin/sh\n{self._group_line()}\necho "$CLAWRELAY_ID {name}" >> "{self.out}"\n{then}\n'
        )
        path.chmod(0o755)
        return path

    def _group_line(self) -> str:
        return f'cut -d" " -f5 /proc/$$/stat >> "{self.groups}"'

    def lines(self) -> list[tuple[str, str]]:
        if not self.out.exists():
            return []
        return [tuple(line.split()) for line in self.out.read_text().splitlines() if line.strip()]  # type: ignore[misc]

    def ids(self) -> Counter[str]:
        return Counter(i for i, _ in self.lines())

    def status(self) -> dict[str, Any]:
        r = self.nodes[0].run("fleet", "status", "--json")
        assert r.code == 0, r.err
        return r.json()

    def cleanup(self) -> None:
        for node in self.nodes:
            if node.relay is not None and node.relay.proc.poll() is None:
                node.relay.proc.kill()
                node.relay.proc.wait(30)
            node.env.end_spawned()
        # a program a killed relay left running (its lifeline kills it: this is for a lifeline
        # that did not), by the group it leads, when that is still one of this test's programs
        if self.groups.exists():
            for pgid in {int(p) for p in self.groups.read_text().split()}:
                with contextlib.suppress(OSError):
                    if str(self.tmp).encode() in Path(f"/proc/{pgid}/cmdline").read_bytes():
                        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, to restart and kill (the session's stays up for the others)."""
    server = RedisServer(tmp_path / "redis").start(redis_bin())
    try:
        yield server
    finally:
        server.stop()


def fleet_of(tmp_path: Path, server: RedisServer) -> Iterator[Fleet]:
    made = Fleet(tmp_path, server)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def fleet(tmp_path: Path, redis_db: RedisServer) -> Iterator[Fleet]:
    yield from fleet_of(tmp_path, redis_db)


def send_queued(sender: Node, count: int) -> list[str]:
    """`count` messages the sender's chain could not deliver: queued after one run each."""
    ids = []
    for n in range(count):
        r = sender.run("send", TARGET, f"message {n}", "--json")
        assert r.code == 1, (r.code, r.out, r.err)
        doc = r.json()
        assert doc["queued"], doc
        ids.append(doc["id"])
    return ids


def outbox(node: Node) -> dict[str, str]:
    r = node.run("outbox", "list", "--json")
    assert r.code == 0, r.err
    return {m["id"]: m["status"] for m in r.json()}


def key(kind: str, name: str) -> str:
    """A fleet key by hand (clawrelay.fleet.keys is what the relays use)."""
    return f"clawrelay:{{fleet}}:{kind}:{name}"


STREAM = key("outbox", TARGET)


def leader(fleet: Fleet) -> str | None:
    return fleet.status()["leader"]


def settled(sender: Node, ids: list[str]) -> Callable[[], dict[str, str] | None]:
    """A poll: each message's status in the sender's journal once none is left to the fleet."""

    def poll() -> dict[str, str] | None:
        log = sender.log()
        states = {i: log[i]["status"] if i in log else "missing" for i in ids}
        return None if {"offered", "queued", "missing"} & set(states.values()) else states

    return poll


def stop_cleanly(*nodes: Node) -> None:
    for node in nodes:
        assert node.stop() == 0, node.stderr[-3000:]
        assert "Traceback" not in node.stderr, node.stderr[-3000:]


def test_the_leaders_relay_killed_mid_attempt_loses_nothing_and_sends_nothing_twice(fleet: Fleet) -> None:
    # L: its program is not there yet (its probe finds no way to t), so it leads and reads nothing
    slow = fleet.tmp / "l-deliver.sh"
    node_l = fleet.deliverer("l", argv0=slow, timeout="90s").start()
    wait_until("l leads", lambda: leader(fleet) == "l", 10)
    a = fleet.sender("a").start()
    ids = send_queued(a, 5)
    wait_until("a offered all five", lambda: list(outbox(a).values()) == ["offered"] * 5, 10)
    assert fleet.redis.cli("XLEN", STREAM) == "5"

    # now L reaches t: one read takes all five, the first is being delivered (for a minute)
    fleet.program(slow, "l", "sleep 60")
    first = wait_until("l's program ran", lambda: fleet.lines(), 10)
    assert first == [(ids[0], "l")]
    pending = fleet.redis.client(decode_responses=True).xpending(STREAM, "relays")
    assert pending["pending"] == 5 and {c["name"]: c["pending"] for c in pending["consumers"]} == {"l": 5}

    b = fleet.deliverer("b").start()
    wait_until(
        "b alive and reaching t",
        lambda: any(n["node"] == "b" and n["alive"] and n["reach"] for n in fleet.status()["nodes"]),
        10,
    )
    node_l.kill()
    killed = time.monotonic()

    # a new leader within ttl + a heartbeat; l offline
    def new_leader() -> str | None:
        view = fleet.status()
        who = view["leader"]
        return who if who not in (None, "l") else None

    who = wait_until("a new leader", new_leader, TTL + HEARTBEAT + 5, step=0.05)
    took = time.monotonic() - killed
    assert who in ("a", "b")
    assert took <= TTL + HEARTBEAT + 1.0, f"a new leader after {took:.2f}s"
    wait_until(
        "l offline", lambda: [n["alive"] for n in fleet.status()["nodes"] if n["node"] == "l"] == [False], 5
    )

    # every message settled at its sender: four delivered by b, the one l was running ambiguous
    states = wait_until("a's messages settled", settled(a, ids), 4 * TTL + 10, step=0.2)
    assert states == {ids[0]: "ambiguous", **{i: "delivered" for i in ids[1:]}}, states
    assert fleet.ids() == Counter(ids), fleet.lines()  # each once: l's one never sent again
    assert sorted(fleet.lines()) == sorted([(ids[0], "l")] + [(i, "b") for i in ids[1:]])

    log = a.log()
    last = log[ids[0]]["attempts"][-1]
    assert last["carrier"] == "fleet:l", last
    assert last["outcome"] == "ambiguous" and "l stopped while delivering it" in last["detail"], last
    assert "may have arrived" in last["detail"] and "not resent" in last["detail"], last
    for i in ids[1:]:
        last = log[i]["attempts"][-1]
        assert (last["carrier"], last["outcome"]) == ("fleet:b", "delivered"), last
        assert last["detail"] == "delivered by b via command", last
    assert outbox(a) == {ids[0]: "ambiguous"}  # a person's to decide, as any ambiguous message

    # nothing left in the shared outbox, and the survivors stop cleanly
    assert fleet.redis.cli("XLEN", STREAM) == "0"
    stop_cleanly(a, b)


def test_a_relay_slow_on_one_message_does_not_resend_the_ones_another_delivered_meanwhile(
    fleet: Fleet,
) -> None:
    # l reads all five at once and is slow on the first (until the test says go); b takes the
    # four l read and left (idle past the ttl), delivers them, and a settles and forgets them
    slow = fleet.tmp / "l-deliver.sh"
    go = fleet.tmp / "go"
    fleet.deliverer("l", argv0=slow, timeout="90s").start()
    a = fleet.sender("a").start()
    ids = send_queued(a, 5)
    wait_until("a offered all five", lambda: list(outbox(a).values()) == ["offered"] * 5, 10)
    fleet.program(
        slow,
        "l",
        f'[ -e "{go}.first" ] || {{ : > "{go}.first"; while [ ! -e "{go}" ]; do sleep 0.05; done; }}',
    )
    assert wait_until("l's program ran", fleet.lines, 10) == [(ids[0], "l")]
    b = fleet.deliverer("b").start()
    wait_until("b delivered the four", lambda: len(fleet.lines()) == 5, 4 * TTL + 10)

    def forgotten() -> bool:
        return all(fleet.redis.cli("EXISTS", key("result", i)) == "0" for i in ids[1:])

    wait_until("a settled the four and forgot them in Redis", forgotten, 10)

    go.touch()  # l ends its slow one, and goes on with the four it had read
    assert wait_until("a settled all five", settled(a, ids), 10) == dict.fromkeys(ids, "delivered")
    time.sleep(1.0)  # l handles what it read within milliseconds of publishing the first
    assert fleet.ids() == Counter(ids), fleet.lines()  # never silently twice
    stop_cleanly(a, b)


@pytest.fixture
def own_fleet(tmp_path: Path, private_redis: RedisServer) -> Iterator[Fleet]:
    yield from fleet_of(tmp_path, private_redis)


def drain_across(
    fleet: Fleet,
    outage: Callable[[RedisServer], None],
    deliverers: tuple[str, ...],
    *,
    ambiguous_ok: bool,
    noticed: bool,
) -> dict[str, str]:
    """Thirty messages offered by a, drained by `deliverers` (a command that takes ~50 ms), with
    `outage` done to Redis once some but not all are delivered: nothing lost, nothing twice.
    `ambiguous_ok`: a message may also end ambiguous, said so (a relay found an attempt another
    began and could not tell how it ended). `noticed`: the outage is long enough that every
    deliverer says Redis went away (a quick restart may pass as a retried command). The
    messages' states at the sender."""
    a = fleet.sender("a").start()
    ids = send_queued(a, 30)
    wait_until("a offered all thirty", lambda: set(outbox(a).values()) == {"offered"}, 10)
    nodes = [fleet.deliverer(name, "sleep 0.05").start() for name in deliverers]
    wait_until("the drain started", lambda: len(fleet.lines()) >= 3, 20, step=0.01)
    done_before = len(fleet.lines())
    outage(fleet.redis)
    assert done_before < len(ids), "the drain ended before the outage: nothing was tested"

    states = wait_until("a's messages settled", settled(a, ids), 30, step=0.2)
    delivered = [i for i in ids if states[i] == "delivered"]
    ambiguous = [i for i in ids if states[i] == "ambiguous"]
    assert len(delivered) + len(ambiguous) == len(ids), states  # nothing lost (dead, failed)
    assert ambiguous_ok or not ambiguous, states
    counts = fleet.ids()
    assert all(n == 1 for n in counts.values()), fleet.lines()  # nothing twice
    assert all(counts[i] == 1 for i in delivered), fleet.lines()  # delivered: it arrived, once
    assert set(counts) <= set(ids)
    by = dict(fleet.lines())
    log = a.log()
    for i in delivered:
        last = log[i]["attempts"][-1]
        assert (last["carrier"], last["outcome"]) == (f"fleet:{by[i]}", "delivered"), last
        # one outcome, even when its relay published it twice (its reply lost to the outage)
        assert last["detail"] == f"delivered by {by[i]} via command", last
    for i in ambiguous:
        last = log[i]["attempts"][-1]
        assert last["outcome"] == "ambiguous" and "may have arrived" in last["detail"], last
    assert outbox(a) == dict.fromkeys(ambiguous, "ambiguous")  # a person's to decide
    assert fleet.redis.cli("XLEN", STREAM) == "0"
    stop_cleanly(a, *nodes)
    if noticed:  # the deliverers did see Redis go away (else the outage tested nothing)
        assert all("cannot reach Redis" in n.stderr for n in nodes), [n.stderr for n in nodes]
    return states


def test_redis_restarted_mid_drain_loses_nothing_and_doubles_nothing(own_fleet: Fleet) -> None:
    # every connection the relays held is closed under them mid-drain; a command on one is
    # retried on a new connection, or the relay sets the fleet aside until Redis answers
    drain_across(own_fleet, lambda redis: redis.restart(), ("b",), ambiguous_ok=False, noticed=False)


def test_redis_killed_mid_drain_loses_nothing_and_doubles_nothing(own_fleet: Fleet) -> None:
    def crash(redis: RedisServer) -> None:
        binary = redis.binary
        assert binary is not None
        redis.kill()  # SIGKILL: appendfsync always kept every write it acknowledged
        time.sleep(TTL)  # down past the locks' ttl: every lock and heartbeat expires meanwhile
        redis.start(binary)

    # two deliverers: after the outage either may find an attempt the other began
    drain_across(own_fleet, crash, ("b", "c"), ambiguous_ok=True, noticed=True)


class ReplyDroppingProxy:
    """A TCP proxy to Redis that, once armed, passes on the first request holding one of
    `needles` and then closes that connection without passing on the reply: the command ran in
    Redis and its caller never heard (as when Redis stops, or the network drops, right then)."""

    def __init__(self, upstream: int, needles: list[bytes]) -> None:
        self.upstream, self.needles = upstream, needles
        self.armed, self.dropped = threading.Event(), threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                return
            self.sockets += [client, server]
            hold = threading.Event()  # set: nothing more goes back to the client
            threading.Thread(target=self._pipe, args=(client, server, hold, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, hold, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, hold: threading.Event, requests: bool) -> None:
        try:
            while data := src.recv(1 << 20):
                if not requests and hold.is_set():
                    break
                if requests and self.armed.is_set() and any(n in data for n in self.needles):
                    self.armed.clear()
                    hold.set()
                    dst.sendall(data)
                    time.sleep(0.3)  # Redis runs it; its reply is dropped
                    self.dropped.set()
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_result_published_twice_by_the_same_relay_reads_as_one_delivery(fleet: Fleet) -> None:
    script = lua.PUBLISH.encode()
    proxy = ReplyDroppingProxy(fleet.redis.port, [script, hashlib.sha1(script).hexdigest().encode()])
    try:
        b = fleet.deliverer("b", port=proxy.port).start()
        a = fleet.sender("a").start()
        proxy.armed.set()
        ids = send_queued(a, 1)
        assert wait_until("a settled it", settled(a, ids), 10 * TTL) == {ids[0]: "delivered"}
        assert proxy.dropped.is_set()  # b's PUBLISH ran, and b never heard: it published again
        assert fleet.lines() == [(ids[0], "b")]
        last = a.log()[ids[0]]["attempts"][-1]
        assert last["detail"] == "delivered by b via command", last  # not "; also b: delivered"
        stop_cleanly(a, b)
    finally:
        proxy.close()
