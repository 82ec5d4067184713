"""Message ids: UUIDv7 (RFC 9562), so ids sort by creation time in the journal and in listings.

Python 3.11 has no `uuid.uuid7`; this is the RFC layout: 48-bit Unix ms, version, 12 random
bits, variant, 62 random bits.
"""

from __future__ import annotations

import os
import re
import time
import uuid


def new_id() -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_id(text: str) -> bool:
    """A message id as clawrelay writes them (one that came from elsewhere, such as the fleet's
    Redis, names lock files and journal rows here: nothing else is taken)."""
    return _ID.fullmatch(text) is not None


SHORT_ID = 8  # the last hex digits of an id: random bits, unique in practice


def short_id(message_id: str) -> str:
    """What to type for one message: the end of its id (a UUIDv7 starts with the time, so its
    first digits are shared by every message of the same minute)."""
    return message_id[-SHORT_ID:]
