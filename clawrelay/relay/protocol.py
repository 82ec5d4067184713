"""The relay's frames: a 4-byte big-endian length, then that many bytes of one JSON object.

Bounded on both sides: a frame longer than MAX_FRAME, not UTF-8 JSON, or not an object with a
string `op` is a `FrameError`, never a partial read or an unbounded buffer. Standard library
only (the forwarding client uses it).

Client → relay: `run` (argv, cwd, env, the streams' encodings; its stdin, stdout and stderr
travel with this frame as SCM_RIGHTS descriptors), then `go` once the relay said `accepted`,
and `signal` (INT) at any time; or `stat`. Relay → client: `accepted` (pid) or `declined`
(why: the client runs the command itself), `exit` (code), `stat`, or `error` (reason, message).
"""

from __future__ import annotations

import json
import socket
import struct

TYPE_CHECKING = False  # typing is not imported: this runs before every forwarded command
if TYPE_CHECKING:
    from typing import Any

VERSION = 1
MAX_FRAME = 4 * 2**20  # an environment, a cwd and argv; a message on the command line is ≤ 1 MiB
_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def pack(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame of {len(data)} bytes is over the limit of {MAX_FRAME}")
    return _HEADER.pack(len(data)) + data


def decode(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FrameError(f"not a JSON frame: {e.__class__.__name__}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
        raise FrameError("a frame is a JSON object with a string `op`")
    return obj


def length(header: bytes) -> int:
    (n,) = _HEADER.unpack(header)
    if n > MAX_FRAME:
        raise FrameError(f"frame of {n} bytes is over the limit of {MAX_FRAME}")
    return int(n)


def recv_exact(sock: socket.socket, n: int, start: bytes = b"") -> bytes | None:
    """`n` bytes (counting `start`); None on end of stream before the first byte."""
    buf = bytearray(start)
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            if not buf:
                return None
            raise FrameError("the connection ended inside a frame")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, start: bytes = b"") -> dict[str, Any] | None:
    """The next frame from a blocking socket; None at end of stream between frames."""
    header = recv_exact(sock, 4, start[:4])
    if header is None:
        return None
    n = length(header)
    body = recv_exact(sock, n, start[4:]) if n else b""
    if body is None:
        raise FrameError("the connection ended inside a frame")
    return decode(body)


def send_frame(sock: socket.socket, obj: dict[str, Any]) -> None:
    sock.sendall(pack(obj))
