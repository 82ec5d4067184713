"""`clawrelay sync REPO --to HOST`: a repository onto a host, cloned or fast-forwarded, never forced.

The host fetches from the repository's own URL (for a local checkout: its `origin`), with proxies
stripped by the carrier and git never prompting. When REPO is a local checkout and the host
cannot reach its origin (a laptop's private remote, a VPN the host is not on), or REPO has no
origin at all, the commits go as a `git bundle` instead: over sftp (or a shell pipe) on ssh, in
pieces through clawrelay's node helper on a node. What is already there is respected: a checkout
with local changes, on another branch, or with commits REPO does not have is reported and left
exactly as it was. `--link` points a symlink at the checkout (a skills folder, say) and reads it
back.

On a node, git takes no `env VAR=…` prefix: OpenClaw refuses GIT_SSH_COMMAND in a node's commands
whatever its policy, and judges `env` with assignments as a program of its own. The same settings
go as git's own `-c` options there (`core.sshCommand`, and `core.askPass=true` for any credential
question: an empty answer, never a prompt), so an allowlist entry for git itself is enough.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clawrelay.carriers.base import Carrier, under_home
from clawrelay.carriers.result import RunResult
from clawrelay.errors import ClawrelayError, TransportError, UsageError
from clawrelay.outcome import Outcome
from clawrelay.reasons import Reason
from clawrelay.remote.record import record_command

if TYPE_CHECKING:
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config.routes import Routes
    from clawrelay.journal import Journal

GIT_ENV = ["env", "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes"]
NODE_GIT = ["git", "-c", "core.askPass=true", "-c", "core.sshCommand=ssh -o BatchMode=yes"]

# Constant; the checkout and the link arrive as positional parameters.
LINK_SCRIPT = r"""
if [ -e "$2" ] && [ ! -L "$2" ]; then
  echo "$2 exists and is not a symlink; move it away first" >&2; exit 3
fi
mkdir -p "$(dirname "$2")" && ln -sfn "$1" "$2" && readlink "$2"
"""


class SyncRefused(ClawrelayError):
    """The host's checkout is not one clawrelay may move: reported, left as it was."""

    exit_code = 1


@dataclass
class SyncResult:
    id: str
    host: str
    carrier: str
    dest: str
    action: str  # cloned | fast-forwarded | up-to-date
    method: str  # origin | bundle | path
    branch: str
    head: str
    link: str | None = None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def summary(self) -> str:
        line = (
            f"{self.action} {self.dest} on {self.host} at {self.head[:12]} ({self.branch}, via {self.method})"
        )
        return line + (f"; {self.link} → {self.dest}" if self.link else "")


def _name_of(repo: str) -> str:
    tail = repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail[:-4] if tail.endswith(".git") else tail


class _Host:
    """git and friends on the host, each within what is left of the sync's time."""

    def __init__(self, carrier: Carrier, end: float) -> None:
        self.carrier = carrier
        self.end = end

    async def run(self, argv: Sequence[str]) -> RunResult:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TransportError("sync: out of time", reason=Reason.TIMEOUT)
        res = await self.carrier.run(argv, timeout=left)
        if res.timed_out:
            raise TransportError(
                f"sync: `{shlex.join(argv[:4])}…` did not finish in time", reason=Reason.TIMEOUT
            )
        return res

    async def git(self, *args: str, check: bool = True) -> RunResult:
        res = await self.run([*NODE_GIT, *args] if self.carrier.name == "node" else [*GIT_ENV, "git", *args])
        if check and res.exit_code != 0:
            raise TransportError(
                f"git {args[0] if args[0] != '-C' else args[2]} on {self.carrier.label} failed: "
                f"{res.stderr_tail()}",
                reason=Reason.GIT_ERROR,
            )
        return res

    async def out(self, *args: str) -> str:
        return (await self.git(*args)).stdout.decode().strip()

    async def link(self, path: str, link: str) -> RunResult:
        """`link` → `path`, replacing nothing but a symlink; prints where it points now."""
        helper = getattr(self.carrier, "helper", None)
        if helper is not None:
            linked: RunResult = await helper(
                "link", [path, link], timeout=max(0.1, self.end - time.monotonic())
            )
            return linked
        return await self.run(["sh", "-c", LINK_SCRIPT, "clawrelay-link", path, link])

    async def discard(self, path: str) -> None:
        """Remove a bundle put on the host."""
        drop = getattr(self.carrier, "drop", None)
        if drop is not None:
            await drop(path, timeout=max(1.0, self.end - time.monotonic()))
        else:
            await self.run(["rm", "-f", path])


async def _local_git(repo: Path, *args: str) -> RunResult:
    from clawrelay.carriers.local import run

    return await run(
        ["git", "-C", str(repo), *args], timeout=120, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    )


async def run_sync(
    routes: Routes,
    journal: Journal,
    carriers: HostCarriers,
    repo: str,
    host: str,
    *,
    dest: str | None = None,
    branch: str | None = None,
    link: str | None = None,
    via: str | None = None,
    timeout: float = 300.0,
) -> SyncResult:
    end = time.monotonic() + timeout
    names = carriers.names(host, [via] if via else None)
    carrier = carriers.get(host, names[0])
    dest = dest or f"~/src/{_name_of(repo)}"
    with record_command(journal, "sync", routes.self_name, host, f"{repo} → {dest}") as rec:
        try:
            result = await _sync(carrier, rec.env.id, host, repo, dest, branch, link, end)
        except ClawrelayError as e:
            rec.failed("sync", carrier.name, e)
            raise
        rec.attempt(
            "sync",
            carrier.name,
            Outcome.DELIVERED,
            detail=result.summary(),
        )
        rec.finish(True, via=carrier.name)
        return result


async def _sync(
    carrier: Carrier,
    run_id: str,
    host: str,
    repo: str,
    dest: str,
    branch: str | None,
    link: str | None,
    end: float,
) -> SyncResult:
    remote = _Host(carrier, end)
    local_repo = Path(repo).expanduser()
    is_local = local_repo.is_dir()
    source: str | None = repo
    if is_local:
        if (await _local_git(local_repo, "rev-parse", "--git-dir")).exit_code != 0:
            raise UsageError(f"{repo} is a folder but not a git repository")
        local_repo = local_repo.resolve()
        got = await _local_git(local_repo, "remote", "get-url", "origin")
        source = got.stdout.decode().strip() if got.exit_code == 0 else None
        if carrier.name == "local":
            source = str(local_repo)  # this machine reads the checkout itself
        if branch is None:
            branch = (
                await _local_git(local_repo, "symbolic-ref", "--short", "HEAD")
            ).stdout.decode().strip() or None
    home = await carrier.home()
    path = under_home(dest, home)
    link_path = under_home(link, home) if link else None

    async def bundle(why: str) -> str:
        return await _bundle_path(carrier, local_repo, is_local, home, run_id, why, end)

    on_branch = ["--branch", branch] if branch else []
    if (await remote.run(["test", "-e", path])).exit_code != 0:
        action = "cloned"
        method = await _git_from(
            remote, source, lambda src: ["clone", "--quiet", *on_branch, "--", src, path], bundle
        )
        if method == "bundle":  # the checkout's origin is REPO's, not the bundle file
            await remote.git(
                "-C", path, "remote", *(["set-url", "origin", source] if source else ["remove", "origin"])
            )
    else:
        if (await remote.git("-C", path, "rev-parse", "--is-inside-work-tree", check=False)).exit_code != 0:
            raise SyncRefused(
                f"{path} on {host} exists and is not a git checkout; left as it is", reason=Reason.NOT_A_REPO
            )
        dirty = (
            await remote.git("-C", path, "status", "--porcelain", "--untracked-files=no")
        ).stdout.decode()
        if dirty.strip():
            files = ", ".join(line[3:] for line in dirty.splitlines()[:5])
            raise SyncRefused(
                f"{path} on {host} has local changes ({files}); not touched — commit or stash "
                "them there first",
                reason=Reason.DIRTY,
            )
        current = await remote.out("-C", path, "rev-parse", "--abbrev-ref", "HEAD")
        if branch is not None and current != branch:
            raise SyncRefused(
                f"{path} on {host} is on branch {current}, not {branch}; not switched",
                reason=Reason.OTHER_BRANCH,
            )
        branch = current
        method = await _git_from(
            remote, source, lambda src: ["-C", path, "fetch", "--quiet", src, current], bundle
        )
        old = await remote.out("-C", path, "rev-parse", "HEAD")
        new = await remote.out("-C", path, "rev-parse", "FETCH_HEAD")
        if old == new:
            action = "up-to-date"
        elif (
            await remote.git("-C", path, "merge-base", "--is-ancestor", old, new, check=False)
        ).exit_code == 0:
            await remote.git("-C", path, "merge", "--ff-only", "--quiet", new)
            action = "fast-forwarded"
        else:
            raise SyncRefused(
                f"{path} on {host} has commits that {repo} does not ({old[:12]} vs {new[:12]}); "
                "diverged, not touched",
                reason=Reason.DIVERGED,
            )
    head = await remote.out("-C", path, "rev-parse", "HEAD")
    branch = branch or await remote.out("-C", path, "rev-parse", "--abbrev-ref", "HEAD")
    if link_path:
        made = await remote.link(path, link_path)
        if made.exit_code != 0:
            raise SyncRefused(f"--link: {made.stderr_tail()}", reason=Reason.LINK_EXISTS)
        if made.stdout.decode().strip() != path:
            raise TransportError(
                f"--link: {link_path} points at {made.stdout.decode().strip()!r}, not {path}",
                reason=Reason.IO_ERROR,
            )
    if method == "origin" and is_local and carrier.name == "local":
        method = "path"  # this machine read the checkout itself
    return SyncResult(run_id, host, carrier.name, path, action, method, branch, head, link_path)


async def _git_from(
    remote: _Host,
    source: str | None,
    args: Callable[[str], list[str]],
    bundle: Callable[[str], Awaitable[str]],
) -> str:
    """A git command that reads from REPO; from a bundle put on the host when it cannot (or REPO
    has no origin). Returns which it was: "origin" or "bundle"."""
    if source is not None:
        res = await remote.git(*args(source), check=False)
        if res.exit_code == 0:
            return "origin"
        why = res.stderr_tail()
    else:
        why = "REPO has no origin"
    path = await bundle(why)
    try:
        await remote.git(*args(path))
    finally:
        await remote.discard(path)
    return "bundle"


async def _bundle_path(
    carrier: Carrier, repo: Path, is_local: bool, home: str, run_id: str, why: str, end: float
) -> str:
    """A bundle of the local checkout's branches, put on the host; returns its path there."""
    put = getattr(carrier, "put", None)
    if not is_local or put is None:
        hint = (
            " (a bundle needs REPO to be a local checkout)"
            if is_local is False and put is not None
            else " (a bundle needs REPO as a local checkout, and a host with an ssh or node carrier)"
        )
        raise TransportError(
            f"the host cannot fetch the repository: {why}{hint}; or give REPO an origin the host can "
            "reach (git remote add origin URL, then git push)",
            reason=Reason.UNREACHABLE,
        )
    with tempfile.TemporaryDirectory(prefix="clawrelay-sync-") as tmp:
        bundle = Path(tmp) / "repo.bundle"
        made = await _local_git(repo, "bundle", "create", str(bundle), "--branches")
        if made.exit_code != 0:
            raise TransportError(f"git bundle failed: {made.stderr_tail()}", reason=Reason.GIT_ERROR)
        remote_path = f"{home}/.clawrelay-sync-{run_id}.bundle"
        placed = await put(bundle, remote_path, timeout=max(1.0, end - time.monotonic()))
    return placed or remote_path  # a node's helper keeps it in its own staging folder
