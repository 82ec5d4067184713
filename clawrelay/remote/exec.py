"""`clawrelay exec HOST -- ARGV…`: one argv on a host, on the first of its carriers that starts it.

The argv arrives verbatim (spaces, quotes, `;`, `$()` and newlines included): over ssh, and over
a node (where `sh` sheds the proxy variables, then `exec`s it: the form a node's allowlist judges
by the program), every element is quoted as one literal word; locally it is exec'd. Only
`--shell` hands a command line to `sh -c`, because the user asked for one. `--detach` starts the
work under nohup with its output in a log file on the host and returns its pid at once.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clawrelay.errors import Reason, TransportError
from clawrelay.outcome import Outcome
from clawrelay.remote.record import record_command

if TYPE_CHECKING:
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config.routes import Routes
    from clawrelay.journal import Journal

# Constant: the log name and the argv arrive as its positional parameters, never as shell text.
DETACH_SCRIPT = r"""
d=${XDG_STATE_HOME:-$HOME/.local/state}/clawrelay/detached
mkdir -p "$d" || exit 74
log=$d/$1.log; shift
nohup "$@" > "$log" 2>&1 < /dev/null &
echo "$! $log"
"""


@dataclass
class ExecResult:
    id: str
    host: str
    carrier: str
    exit_code: int
    timed_out: bool
    stdout: bytes
    stderr: bytes
    elapsed_ms: int
    pid: int | None = None
    log: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "host": self.host, "carrier": self.carrier}
        if self.pid is not None:
            out.update(pid=self.pid, log=self.log)
            return out
        out.update(
            exit_code=self.exit_code,
            timed_out=self.timed_out,
            stdout=self.stdout.decode("utf-8", "replace"),
            stderr=self.stderr.decode("utf-8", "replace"),
            elapsed_ms=self.elapsed_ms,
        )
        return out


def host_name(routes: Routes, name: str) -> str:
    """A host by its name, or the host of a target named (or aliased) so."""
    if name in routes.config.hosts:
        return name
    from clawrelay.errors import UnknownTarget

    try:
        target = routes.target(routes.resolve(name))
    except UnknownTarget:
        target = None
    if target is None or target.host is None:
        known = ", ".join(sorted(routes.config.hosts)) or "none"
        raise UnknownTarget(f"unknown host {name!r} (hosts: {known}; a target's name works too)")
    return target.host


async def run_exec(
    routes: Routes,
    journal: Journal,
    carriers: HostCarriers,
    host: str,
    argv: Sequence[str],
    *,
    via: str | None = None,
    cwd: str | None = None,
    timeout: float = 60.0,
    shell: bool = False,
    detach: bool = False,
) -> ExecResult:
    from clawrelay.carriers.hosts import run_first

    command = ["sh", "-c", " ".join(argv)] if shell else list(argv)
    label = " ".join(argv) if shell else shlex.join(argv)
    names = carriers.names(host, [via] if via else None)
    opened = [carriers.get(host, n) for n in names]
    with record_command(journal, "exec", routes.self_name, host, label) as rec:
        run_id = rec.env.id
        if detach:
            command = ["sh", "-c", DETACH_SCRIPT, "clawrelay-detach", run_id, *command]  # log named by run id
        used: list[str] = []
        try:
            res = await run_first(
                opened, command, timeout=lambda: timeout, cwd=cwd, chosen=lambda c: used.append(c.name)
            )
        except TransportError as e:
            rec.failed("exec", used[-1] if used else None, e)
            raise
        carrier = used[-1]
        result = ExecResult(
            run_id, host, carrier, res.exit_code, res.timed_out, res.stdout, res.stderr, res.elapsed_ms
        )
        ok = res.exit_code == 0 and not res.timed_out
        if detach and ok:
            pid, _, log = res.stdout.decode().strip().partition(" ")
            result.pid, result.log = int(pid), log
            detail = f"detached: pid {pid}, log {log}"
        elif res.timed_out:
            detail = f"killed at the {timeout:g}s limit"
        else:
            detail = f"exit {res.exit_code}" + (
                f": {t}" if res.exit_code and (t := res.stderr_tail(200)) else ""
            )
        rec.attempt(
            "exec",
            carrier,
            Outcome.DELIVERED if ok else Outcome.FAILED,
            detail=detail,
            reason=None if ok else (Reason.TIMEOUT if res.timed_out else Reason.EXIT_STATUS),
        )
        rec.finish(ok, via=carrier if ok else None)
        return result
