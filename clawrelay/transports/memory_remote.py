"""memory_file on a host reached over ssh or a node: the same entry, written by one fixed script.

The script is a constant; the workspace, dates, id and entry travel as its own argv elements
(`sh -c SCRIPT clawrelay-memory WS DAY TIME PATTERN PREFIX SUFFIX [EARLIER_DAY…]`), so the message
is never part of any shell text, on a node or over ssh. The entry itself is rendered by
`memory_note` (the one definition of the format): the script only puts the host's clock between
PREFIX and SUFFIX and never looks inside them. It does remotely what the local writer does:
refuse a missing workspace and a memory folder or note that leads outside it, create them private
(0700, 0600), take the same lock the local writer takes (flock on the note itself; a mkdir lock
where flock(1) is missing, as on macOS), skip an id whose header is already in this note or an
earlier day's (PATTERN, a grep expression only a header line can match), append in one write,
and read the id back.

On a node the same script runs as the `memory` command of clawrelay's node helper
(`carriers.node_helper`), a file the node judges by its path: a node with a locked-down exec
policy can allowlist it, where it could neither allowlist nor approve an inline `sh -c SCRIPT`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from clawrelay.carriers.base import Carrier
from clawrelay.carriers.result import RunResult
from clawrelay.envelope import Envelope
from clawrelay.errors import TransportError
from clawrelay.outcome import StepResult
from clawrelay.reasons import Reason
from clawrelay.transports import memory_note
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.memory_file import in_note

EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL = 65, 66, 75

SCRIPT = r"""
set -u
ws=$1 day=$2 at=$3 pattern=$4 prefix=$5 suffix=$6
shift 6
umask 077
case $ws in "~") ws=$HOME ;; "~/"*) ws=$HOME/${ws#"~/"} ;; esac
[ -d "$ws" ] || { echo "workspace $ws does not exist" >&2; exit 66; }
[ -n "$day" ] || day=$(date +%Y-%m-%d)
[ -n "$at" ] || at=$(date '+%H:%M:%S %z')
mkdir -p "$ws/memory" || exit 74
root=$(cd "$ws" && pwd -P) mem=$(cd "$ws/memory" && pwd -P) || exit 74
case $mem in "$root"/*) ;; *) echo "$ws/memory leads outside the workspace $root" >&2; exit 65 ;; esac
found() { LC_ALL=C grep -a -q -- "$pattern" "$1" 2>/dev/null; }
for d in "$@"; do
  [ "$d" = "$day" ] || ! found "$mem/$d.md" || { echo "already $mem/$d.md"; exit 0; }
done
f=$mem/$day.md
[ -L "$f" ] && { echo "$f is a symlink" >&2; exit 65; }
: >> "$f" || exit 74
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$f"; flock -w 20 9 || { echo "$f: lock busy" >&2; exit 75; }
else
  n=0
  until mkdir "$f.clawrelay-lock" 2>/dev/null; do
    n=$((n+1)); [ $n -gt 200 ] && { echo "$f: lock busy" >&2; exit 75; }; sleep 0.1
  done
  trap 'rmdir "$f.clawrelay-lock"' EXIT
fi
if found "$f"; then echo "already $f"; exit 0; fi
lead=
if [ -s "$f" ]; then
  case $(tail -c 2 "$f" | od -An -tx1 | tr -d ' \n') in 0a0a) ;; *0a) lead='\n' ;; *) lead='\n\n' ;; esac
fi
printf "%b%s%s%s" "$lead" "$prefix" "$at" "$suffix" >> "$f" || exit 74
found "$f" || { echo "$f: entry not found after writing" >&2; exit 74; }
echo "written $f"
"""


def args_for(env: Envelope, workspace: str, when: datetime | None) -> list[str]:
    """The script's arguments. `when` is None when the host's own clock and zone should date it."""
    day = f"{when:%Y-%m-%d}" if when else ""
    at = memory_note.stamp(when) if when else ""
    now = when or datetime.now().astimezone()
    zone = when.tzinfo if when else None
    earlier = [f"{d:%Y-%m-%d}" for d in memory_note.days_to_check(env.created_ms, now, zone)]
    prefix, suffix = memory_note.split_entry(env)
    return [workspace, day, at, memory_note.header_pattern(env.id), prefix, suffix, *earlier]


def argv_for(env: Envelope, workspace: str, when: datetime | None) -> list[str]:
    """The script's argv on ssh and local hosts."""
    return ["sh", "-c", SCRIPT, "clawrelay-memory", *args_for(env, workspace, when)]


class _Writer:
    """A host's carrier, running the writer: SCRIPT by `sh -c`, or on a node its helper's `memory`."""

    def __init__(self, carrier: Carrier, args: list[str]) -> None:
        self.carrier, self.args = carrier, args
        self.name, self.label = carrier.name, carrier.label

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | None = None,
        stdin: bytes | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> RunResult:
        helper = getattr(self.carrier, "helper", None)
        if helper is not None:
            res: RunResult = await helper("memory", self.args, timeout=timeout, on_spawn=on_spawn)
            return res
        return await self.carrier.run(argv, timeout=timeout, cwd=cwd, stdin=stdin, on_spawn=on_spawn)

    async def home(self) -> str:
        return await self.carrier.home()


async def deliver_remote(env: Envelope, ctx: AttemptContext, when: datetime | None) -> StepResult:
    from clawrelay.carriers.base import GRACE_S
    from clawrelay.carriers.hosts import run_first

    host = ctx.host
    assert host is not None
    args = args_for(env, host.workspace, when)
    res = await run_first(
        [_Writer(c, args) for c in ctx.carriers()],
        ["sh", "-c", SCRIPT, "clawrelay-memory", *args],
        timeout=lambda: max(0.5, ctx.remaining() - GRACE_S),
        on_spawn=ctx.mark_sent,
        chosen=ctx.chose,
    )
    out = res.stdout.decode("utf-8", "replace").strip()
    if res.timed_out:
        return StepResult.ambiguous(Reason.TIMEOUT, f"memory write on {ctx.carrier} did not finish in time")
    if res.exit_code == 0:
        state, _, path = out.partition(" ")
        return in_note(path, written=state != "already")
    detail = res.stderr_tail() or f"exit {res.exit_code}"
    if res.exit_code == EX_NOINPUT:
        raise TransportError(detail, reason=Reason.NOT_FOUND)
    if res.exit_code == EX_DATAERR:
        raise TransportError(detail, reason=Reason.UNSAFE_PATH)
    if res.exit_code == EX_TEMPFAIL:
        raise TransportError(detail, reason=Reason.BUSY, retryable=True)
    raise TransportError(f"memory write failed (exit {res.exit_code}): {detail}", reason=Reason.IO_ERROR)
