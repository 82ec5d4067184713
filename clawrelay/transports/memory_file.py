"""A mailbox that survives everything: one entry appended to the target's daily memory note.

`<workspace>/memory/YYYY-MM-DD.md`, dated in the host's timezone, in the format of
`memory_note` (a header line, then the body with every line quoted, so no body can forge or hide
an entry). The entry is written with one `write` under an flock and fsynced, so concurrent senders
never interleave; an id already in this note or an earlier one since the message was created is
not written again, so a retry after a crash, even past midnight, cannot duplicate it. Files and
the memory folder are created as needed (0600 and 0700), but never outside the workspace, and a
missing workspace is an error, not something to invent.

On 2026.9 gateways a daily note does not reach the model by itself, so once the entry is written
the step wakes the target's session (`wake`, on the gateway of its sessions_send step) with a
line naming the entry. That wake is a courtesy: the message is delivered when the bytes are on
disk, and a gateway that does not answer within a moment only adds "no wake" to the record.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from datetime import date, datetime, tzinfo
from pathlib import Path

from clawrelay.envelope import Envelope
from clawrelay.errors import ClawrelayError, TransportError
from clawrelay.outcome import Outcome, StepResult
from clawrelay.reasons import Reason
from clawrelay.transports import memory_note
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.memory_note import has_entry
from clawrelay.transports.specs.memory_file import SPEC, MemoryFileStep

__all__ = ["MemoryFile", "has_entry", "note_path"]

_LOCK_POLL_S = 0.005
WAKE_WAIT_S = 3.0  # the most a wake may add to a delivered memory entry


def note_path(workspace: Path, when: date) -> Path:
    return workspace / "memory" / f"{when:%Y-%m-%d}.md"


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None  # this machine's local time
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class MemoryFile:
    name = SPEC.name
    resend_window = SPEC.resend_window

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, MemoryFileStep)
        result = await self._write(env, ctx)
        return await _woken(result, env, ctx) if result.outcome is Outcome.DELIVERED and opts.wake else result

    async def _write(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        host = ctx.host
        assert host is not None  # config.refs guarantees a host for memory_file
        zone = _zone(host.timezone)
        if ctx.step.carriers[0] != "local":
            from clawrelay.transports.memory_remote import deliver_remote

            # Without a configured zone the host's own clock dates the entry: its date, not ours.
            return await deliver_remote(env, ctx, datetime.now(zone) if zone else None)
        ctx.carrier = "local"
        when = datetime.now(zone) if zone else datetime.now().astimezone()
        workspace = Path(host.workspace).expanduser()
        path = self._prepare(workspace, when)
        earlier = [
            note_path(workspace, day)
            for day in memory_note.days_to_check(env.created_ms, when, when.tzinfo)[1:]
        ]
        found = _already_in(earlier, env.id)
        if found is not None:
            return in_note(found, written=False)
        written = await self._append(path, env, when, ctx)
        with open(path, encoding="utf-8", errors="replace") as f:
            if not has_entry(f.read(), env.id):
                raise TransportError(
                    f"{path}: entry {env.id} not found after writing", reason=Reason.IO_ERROR
                )
        return in_note(path, written=written)

    @staticmethod
    def _prepare(workspace: Path, when: datetime) -> Path:
        if not workspace.is_dir():
            raise TransportError(f"workspace {workspace} does not exist", reason=Reason.NOT_FOUND)
        root = workspace.resolve()
        path = note_path(workspace, when)
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
        except OSError as e:
            raise TransportError(f"cannot create {path.parent}: {e.strerror}", reason=Reason.IO_ERROR) from e
        if not _within(path.parent.resolve(), root):
            raise TransportError(
                f"{path.parent} leads outside the workspace {root}", reason=Reason.UNSAFE_PATH
            )
        return path

    async def _append(self, path: Path, env: Envelope, when: datetime, ctx: AttemptContext) -> bool:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            reason = Reason.UNSAFE_PATH if e.errno == errno.ELOOP else Reason.IO_ERROR
            raise TransportError(f"cannot open {path}: {e.strerror}", reason=reason) from e
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_POLL_S)  # cancelled at the attempt's timeout
            size = os.fstat(fd).st_size
            existing = os.pread(fd, size, 0).decode("utf-8", "replace")
            if has_entry(existing, env.id):
                return False
            trailing = len(existing) - len(existing.rstrip("\n"))  # one blank line between entries
            lead = "\n" * max(0, 2 - trailing) if existing else ""
            entry = (lead + memory_note.render(env, memory_note.stamp(when))).encode()
            ctx.mark_sent()
            if os.write(fd, entry) != len(entry):
                raise TransportError(f"{path}: short write", reason=Reason.IO_ERROR)
            os.fsync(fd)
            return True
        except OSError as e:
            raise TransportError(f"cannot write {path}: {e.strerror}", reason=Reason.IO_ERROR) from e
        finally:
            os.close(fd)


def in_note(path: Path | str, *, written: bool) -> StepResult:
    """Delivered into the note at `path`: by this attempt, or by an earlier one (`written` False)."""
    return StepResult(
        Outcome.DELIVERED, detail=f"{path}" + ("" if written else " (already there)"), where=str(path)
    )


def _already_in(notes: list[Path], message_id: str) -> Path | None:
    """The earlier note that already holds this id, if one does (read without its lock: only
    this message's owner, who holds its claim, could be writing that id)."""
    for note in notes:
        try:
            with open(note, encoding="utf-8", errors="replace") as f:
                if has_entry(f.read(), message_id):
                    return note
        except FileNotFoundError:
            continue
        except OSError as e:
            raise TransportError(f"cannot read {note}: {e.strerror}", reason=Reason.IO_ERROR) from e
    return None


async def _woken(result: StepResult, env: Envelope, ctx: AttemptContext) -> StepResult:
    """The delivered entry, and a wake naming it where the target's gateway answers at once."""
    from dataclasses import replace

    from clawrelay.transports.system_event import wake

    step = ctx.routes.session_step(ctx.target)
    if step is None:
        return result  # no gateway known for this target: the note waits for the agent's memory search
    text = (
        f"{env.headline()}\nA message for you was appended to {result.where}: read the entry with "
        "this id there."
    )
    budget = min(WAKE_WAIT_S, ctx.remaining() - 0.5)  # end well before the attempt's own timeout
    if budget < 0.5:
        return replace(result, detail=f"{result.detail}; no wake (no time left)")
    try:
        async with asyncio.timeout(budget):  # the watch of its turn ends first, by itself
            woken = await wake(ctx, step.gateway, "now", text, within=budget - 0.1)
        unconfirmed = woken.turn.outcome == "unconfirmed"
        turn = f"not confirmed within {budget:g}s" if unconfirmed else woken.turn.short
        note = f"then {woken.sent}, {turn}"  # the entry is the delivery, whatever its wake's turn did
    except (ClawrelayError, TimeoutError) as e:
        note = f"no wake ({getattr(e, 'reason', None) or 'timeout'})"
    return replace(result, detail=f"{result.detail}; {note}")
