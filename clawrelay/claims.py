"""Who owns a message in flight: an flock on `locks/<id>.lock`.

The kernel drops the lock when its process dies, however it dies, so `outbox retry` tells a dead
sender (lock free: the message is ours to retry) from a slow one (lock held: leave it) at once,
and two retries of the same message never run together. The journal's status is re-read after
taking the lock, because another process may have delivered it in between.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class Claim:
    """An exclusive, non-blocking hold on one message id."""

    def __init__(self, lock_dir: Path, message_id: str) -> None:
        self.path = lock_dir / f"{message_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:  # a full or read-only state dir: nothing can be owned, so nothing is sent
            from clawrelay.errors import StateError

            raise StateError(
                f"cannot take {self.path}: {e.strerror or e} (set CLAWRELAY_HOME to a "
                "writable folder with room)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self, *, finished: bool = False) -> None:
        """Drop the hold; `finished` also removes the lock file (the message left the outbox)."""
        if self._fd is None:
            return
        if finished:
            # Unlinked while still held: a process that opened the old file and gets the lock
            # later re-reads the journal, sees the final status, and leaves the message alone.
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def in_flight(lock_dir: Path, message_id: str) -> bool:
    """True when a live process holds this message."""
    path = lock_dir / f"{message_id}.lock"
    if not path.exists():
        return False
    claim = Claim(lock_dir, message_id)
    if claim.acquire():
        claim.release()
        return False
    return True
