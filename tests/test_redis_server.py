"""The Redis test infrastructure itself (tests/redis_server.py): the fleet's tests rely on it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis
from conftest import alive
from redis_server import RedisServer, ping, redis_bin

pytestmark = pytest.mark.integration  # test_stop_and_kill starts its own server


def test_redis_db_is_empty_and_keeps_its_data_across_restart(redis_db: RedisServer) -> None:
    assert redis_db.cli("DBSIZE") == "0"
    with redis.Redis.from_url(redis_db.url, decode_responses=True) as r:
        r.set("fleet:k", "v")
        r.hset("fleet:h", mapping={"a": "1"})
    port = redis_db.port
    redis_db.restart()  # a clean shutdown: the append-only file is the data
    assert redis_db.port == port
    assert redis_db.cli("GET", "fleet:k") == "v"
    assert redis_db.cli("HGET", "fleet:h", "a") == "1"


def test_wrong_password_is_refused(redis_server: RedisServer) -> None:
    assert ping(redis_server.host, redis_server.port, redis_server.password)
    assert not ping(redis_server.host, redis_server.port, "wrong")
    for password in ("wrong", None):
        with redis_server.client(password=password) as r, pytest.raises(redis.AuthenticationError):
            r.ping()


def test_kill_keeps_synced_writes_and_stop_frees_the_port(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start(redis_bin())
    try:
        assert server.cli("SET", "k", "v") == "OK"
        server.kill()  # a crash: appendfsync always already wrote it
        server.start(redis_bin())
        assert server.cli("GET", "k") == "v"
        assert server.proc is not None
        pid = server.proc.pid
    finally:
        server.stop()
    assert server.proc is None and not alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()
    with socket.socket() as s:  # bound as a server would bind it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((server.host, server.port))
