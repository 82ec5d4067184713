"""clawrelay's node helper: one script of its own on a node, for its multi-step work there.

A node with a locked-down exec policy (`carriers.node_policy`) runs only what its allowlist
names, and judges `sh SCRIPT …` by the script's path, where an inline `sh -c SCRIPT` can be
neither allowlisted nor approved there. So clawrelay's own multi-step work on a node (a memory
entry, a bundle in pieces, a symlink) goes through one script, the helper
(`~/.local/share/clawrelay/node-helper.sh`, run as `sh HELPER …`), which one allowlist entry
covers. clawrelay writes the helper itself the first time it needs it; a node that lets nothing
write it gets a one-line error saying which file to copy where.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from clawrelay.carriers.proxy import UNSET
from clawrelay.carriers.result import RunResult
from clawrelay.errors import TransportError
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.carriers.node import NodeCarrier

HELPER_PATH = ".local/share/clawrelay/node-helper.sh"  # under the node user's home
HELPER_PATTERN = f"~/{HELPER_PATH}"  # its allowlist entry: a node expands `~` to its own user's home
STAGE_PATH = ".local/share/clawrelay/incoming"  # where `put` leaves files, and nowhere else
PIECE = 96 * 1024  # base64 characters per argv element of a `put` (Linux: 128 KiB per element)
PIECES = 2  # elements per node run (macOS: 256 KiB of argv and environment together, on old ones)
STALE = 79  # the helper's exit when it is another version than the one asked for

# The helper, with @VERSION@ for the hash of its text. `sh HELPER VERSION COMMAND :ARG…`; every
# path it writes is under the workspace given (memory), its own staging folder (put, seal, drop),
# or a symlink that replaces nothing but a symlink (link). @MEMORY@ and @LINK@ are the scripts the
# ssh and local paths run with `sh -c`, unchanged, so both paths write the same bytes.
_HELPER = r"""# clawrelay's node helper: written and kept by clawrelay (docs/transports.md), do not edit.
# sh node-helper.sh VERSION COMMAND :ARG...  (memory, put, seal, drop, link, version)
[ "${1-}" = "@VERSION@" ] || { echo "clawrelay node helper @VERSION@, not ${1:-none}" >&2; exit 79; }
shift
@UNSET@
cmd=${1-}
[ $# -gt 0 ] && shift
# each argument comes with a `:` in front (a node under an allowlist drops empty ones): off again
n=$#
while [ "$n" -gt 0 ]; do a=$1; shift; set -- "$@" "${a#:}"; n=$((n - 1)); done
stage=$HOME/@STAGE@
named() { case $1 in ''|.*|*[!A-Za-z0-9._-]*) echo "not a staging name: $1" >&2; exit 64 ;; esac; }
bytes() { wc -c < "$1" | tr -d ' \t'; }
case $cmd in
version) echo "@VERSION@" ;;
memory)
@MEMORY@
;;
put)
  named "$1"; f=$stage/$1.part offset=$2; shift 2
  umask 077; mkdir -p "$stage" || exit 74
  [ "$offset" = 0 ] && { : > "$f" || exit 74; }
  [ -f "$f" ] && [ "$(bytes "$f")" = "$offset" ] || { echo "$f: not $offset bytes long" >&2; exit 65; }
  dec=
  for d in "base64 -d" "base64 -D" "openssl base64 -d -A"; do
    [ "$(printf 'b2s=' | $d 2>/dev/null)" = ok ] && { dec=$d; break; }
  done
  [ -n "$dec" ] || { echo "no base64 decoder here (base64, openssl)" >&2; exit 69; }
  for piece in "$@"; do printf '%s' "$piece" | $dec >> "$f" || exit 74; done
  bytes "$f" ;;
seal)
  named "$1"; f=$stage/$1
  [ "$(bytes "$f.part")" = "$2" ] || { echo "$f.part: not $2 bytes long" >&2; exit 65; }
  mv -f "$f.part" "$f" && echo "$f" ;;
drop)
  named "$1"; rm -f "$stage/$1" "$stage/$1.part" ;;
link)
  [ -d "$1" ] || { echo "$1 is not a folder" >&2; exit 66; }
@LINK@
;;
*) echo "clawrelay node helper: no command ${cmd:-given}" >&2; exit 64 ;;
esac
"""

# Writes the helper where the node lets a shell line run (OpenClaw's default policy): $1 the path,
# $2 the text. Atomic (a temporary file, then mv), so a concurrent run never sees half of it.
INSTALL = 'umask 077 && mkdir -p "${1%/*}" && printf %s "$2" > "$1.$$" && mv -f "$1.$$" "$1"'


@cache
def helper_script() -> tuple[str, str]:
    """(version, text) of the helper this clawrelay runs."""
    from clawrelay.remote.sync import LINK_SCRIPT
    from clawrelay.transports.memory_remote import SCRIPT

    text = (
        _HELPER.replace("@UNSET@", UNSET)
        .replace("@STAGE@", STAGE_PATH)
        .replace("@MEMORY@", SCRIPT.strip("\n"))
        .replace("@LINK@", LINK_SCRIPT.strip("\n"))
    )
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return version, text.replace("@VERSION@", version)


def local_helper() -> Path:
    """The helper, written in clawrelay's state dir here: the file to copy to a node that lets
    nothing write it (byte for byte what clawrelay would have written there)."""
    from clawrelay import paths

    path = paths.state_dir() / "node-helper.sh"
    text = helper_script()[1]
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def is_helper(argv: Sequence[str]) -> bool:
    return len(argv) > 1 and argv[0] == "sh" and argv[1].endswith("/" + HELPER_PATH)


def no_helper(c: NodeCarrier, path: str) -> TransportError:
    """The helper is missing and the node lets nothing write it: which file to copy where."""
    return TransportError(
        f"{c.label}: clawrelay's node helper is not at {path} and the node's exec policy lets "
        f"nothing write it; copy {local_helper()} from this machine to that path there (the "
        f"node's allowlist then needs: {c.allowlist_add(HELPER_PATTERN)})",
        reason=Reason.DENIED,
        fix=c.allowlist_add(HELPER_PATTERN),
    )


def _staging_name(remote: str) -> str:
    """The name a file `put` as `remote` has in the helper's staging folder (no leading dot)."""
    return PurePosixPath(remote).name.lstrip(".")


def _stale(res: RunResult, path: str) -> bool:
    """The helper is not there (`sh` cannot open it), or is another version."""
    err = res.stderr.decode("utf-8", "replace")
    return res.exit_code == STALE or (
        res.exit_code != 0
        and path in err
        and ("No such file" in err or "an't open" in err or "annot open" in err)
    )


class NodeHelper:
    """clawrelay's helper on one node, and what rides it: kept per carrier, so it is looked for
    (and written where it is missing or another version) once."""

    def __init__(self, carrier: NodeCarrier) -> None:
        self.carrier = carrier
        self._ready = False

    async def path(self) -> str:
        return f"{(await self.carrier.home()).rstrip('/')}/{HELPER_PATH}"

    async def run(
        self, command: str, args: Sequence[str], *, timeout: float, on_spawn: Callable[[], None] | None = None
    ) -> RunResult:
        """`sh HELPER VERSION COMMAND :ARG…` on the node, the helper written first where it is
        missing or another version (and the node lets clawrelay write it)."""
        end = time.monotonic() + timeout
        path = await self.path()
        if not self._ready:
            res = await self._run(path, command, args, end, on_spawn)
            if not _stale(res, path):
                self._ready = True
                return res
            await self.install(end)
        return await self._run(path, command, args, end, on_spawn)

    async def _run(
        self, path: str, command: str, args: Sequence[str], end: float, on_spawn: Callable[[], None] | None
    ) -> RunResult:
        # no proxy to shed: the helper unsets them itself
        argv = ["sh", path, helper_script()[0], command, *(f":{a}" for a in args)]
        return await self.carrier.system_run(
            argv, argv, argv, timeout=max(0.1, end - time.monotonic()), on_spawn=on_spawn
        )

    async def install(self, end: float) -> None:
        """Write the helper (where the node runs a shell line unasked: its default policy)."""
        path = await self.path()
        command = ["sh", "-c", INSTALL, "clawrelay-install", path, helper_script()[1]]
        res = await self.carrier.run_unasked(command, command, end)
        if res is None:
            raise no_helper(self.carrier, path)
        if res.exit_code != 0:
            raise TransportError(
                f"{self.carrier.label}: cannot write clawrelay's node helper at {path}: {res.stderr_tail()}",
                reason=Reason.IO_ERROR,
            )
        self._ready = True

    async def put(self, local: Path, remote: str, *, timeout: float) -> str:
        """`local` into the helper's staging folder on the node, named as `remote` is, in pieces
        of base64 small enough for any node's argv (one piece in memory at a time); returns its
        path there."""
        end = time.monotonic() + timeout
        name = _staging_name(remote)
        size = local.stat().st_size
        offset = 0
        with local.open("rb") as f:
            while True:
                data = f.read(PIECE * PIECES // 4 * 3)
                if not data and offset:
                    break
                text = base64.b64encode(data).decode()
                pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
                res = await self._ok("put", [name, str(offset), *pieces], end)
                offset += len(data)
                if res.stdout.decode().strip() != str(offset):
                    raise TransportError(
                        f"{self.carrier.label}: {name} is {res.stdout.decode().strip()} "
                        f"bytes there after a piece, not {offset}",
                        reason=Reason.IO_ERROR,
                    )
                if not data:
                    break
        sealed = await self._ok("seal", [name, str(size)], end)
        return sealed.stdout.decode().strip()

    async def drop(self, remote: str, *, timeout: float = 30.0) -> None:
        """Remove what `put` left under that name."""
        await self._ok("drop", [_staging_name(remote)], time.monotonic() + timeout)

    async def _ok(self, command: str, args: Sequence[str], end: float) -> RunResult:
        left = end - time.monotonic()
        if left <= 0:
            raise TransportError(f"{self.carrier.label}: out of time moving a file", reason=Reason.TIMEOUT)
        res = await self.run(command, args, timeout=left)
        if res.timed_out or res.exit_code != 0:
            raise TransportError(
                f"{self.carrier.label}: clawrelay's node helper ({command}) "
                + ("did not finish in time" if res.timed_out else f"failed: {res.stderr_tail()}"),
                reason=Reason.TIMEOUT if res.timed_out else Reason.IO_ERROR,
            )
        return res
