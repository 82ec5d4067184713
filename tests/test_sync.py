"""`clawrelay sync` over the real sshd: clone, fast-forward, refusals that leave the checkout alone,
a git bundle when the host cannot reach the origin, and --link."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Env
from remote import remote_routes
from sshd import Sshd

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=GIT_ENV
    ).stdout.strip()


def commit(work: Path, text: str) -> str:
    (work / "notes.txt").write_text(
        ((work / "notes.txt").read_text() if (work / "notes.txt").exists() else "") + text
    )
    git(work, "add", "notes.txt")
    git(work, "commit", "-qm", text)
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def repo(env: Env, sshd: Sshd) -> Path:
    """A local checkout with an origin the "remote" host can reach (a bare repo on this machine)."""
    origin = env.tmp / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    work = env.tmp / "work"
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True, capture_output=True)
    git(work, "checkout", "-q", "-b", "main")
    commit(work, "one\n")
    git(work, "push", "-q", "origin", "main")
    remote_routes(env, sshd=sshd)
    return work


def test_clone_then_fast_forward_then_up_to_date(env: Env, repo: Path) -> None:
    dest = env.tmp / "remote" / "skills-repo"
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["action"], doc["method"], doc["branch"], doc["carrier"]) == (
        "cloned",
        "origin",
        "main",
        "ssh",
    )
    assert doc["head"] == git(repo, "rev-parse", "HEAD") == git(dest, "rev-parse", "HEAD")
    new = commit(repo, "two\n")
    git(repo, "push", "-q", "origin", "main")
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest))
    assert r.code == 0 and r.out.startswith("fast-forwarded"), r.err
    assert git(dest, "rev-parse", "HEAD") == new and (dest / "notes.txt").read_text() == "one\ntwo\n"
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--json")
    assert r.json()["action"] == "up-to-date"
    kinds = [(m["kind"], m["status"]) for m in env.run("log", "--json").json()]
    assert kinds == [("sync", "delivered")] * 3


def test_a_dirty_checkout_is_reported_and_left_alone(env: Env, repo: Path) -> None:
    dest = env.tmp / "remote" / "r"
    assert env.run("sync", str(repo), "--to", "box", "--dest", str(dest)).code == 0
    (dest / "notes.txt").write_text("edited on the remote\n")
    commit(repo, "two\n")
    git(repo, "push", "-q", "origin", "main")
    before = git(dest, "rev-parse", "HEAD")
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest))
    assert r.code == 1 and "local changes (notes.txt)" in r.err and r.err.count("\n") == 1
    assert (dest / "notes.txt").read_text() == "edited on the remote\n" and git(
        dest, "rev-parse", "HEAD"
    ) == before
    assert env.run("log", "--json").json()[-1]["attempts"][0]["reason"] == "dirty"


def test_a_diverged_checkout_is_reported_and_left_alone(env: Env, repo: Path) -> None:
    dest = env.tmp / "remote" / "r"
    assert env.run("sync", str(repo), "--to", "box", "--dest", str(dest)).code == 0
    local_only = commit(dest, "made on the remote\n")
    commit(repo, "two\n")
    git(repo, "push", "-q", "origin", "main")
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest))
    assert r.code == 1 and "diverged, not touched" in r.err
    assert git(dest, "rev-parse", "HEAD") == local_only


def test_an_unreachable_origin_goes_as_a_bundle_over_ssh(env: Env, repo: Path) -> None:
    git(repo, "remote", "set-url", "origin", "https://127.0.0.1:9/private.git")  # the host cannot reach it
    head = commit(repo, "not pushed anywhere\n")
    dest = env.tmp / "remote" / "r"
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--json")
    assert r.code == 0, r.err
    assert (r.json()["method"], r.json()["action"]) == ("bundle", "cloned")
    assert git(dest, "rev-parse", "HEAD") == head
    assert git(dest, "remote", "get-url", "origin") == "https://127.0.0.1:9/private.git"
    newer = commit(repo, "and another\n")
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--json")
    assert (r.json()["method"], r.json()["action"]) == ("bundle", "fast-forwarded")
    assert git(dest, "rev-parse", "HEAD") == newer
    assert not list(Path.home().glob(".clawrelay-sync-*.bundle"))  # no bundle left on the host


def test_a_host_without_sftp_gets_the_bundle_another_way(
    env: Env, repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from sshd import sshd_bin

    bare = Sshd(tmp_path_factory.mktemp("sshd-no-sftp"), sftp=False)
    try:
        bare.start(sshd_bin())
        remote_routes(env, sshd=bare)
        git(repo, "remote", "set-url", "origin", "https://127.0.0.1:9/private.git")
        head = commit(repo, "only here\n")
        dest = env.tmp / "remote" / "r"
        r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--json")
        assert "Traceback" not in r.err
        assert r.code == 0, r.err
        assert (r.json()["method"], r.json()["action"]) == ("bundle", "cloned")
        assert git(dest, "rev-parse", "HEAD") == head
        assert not list(Path.home().glob(".clawrelay-sync-*.bundle"))
    finally:
        bare.stop()


def test_link_points_at_the_checkout_and_never_replaces_a_folder(env: Env, repo: Path) -> None:
    dest = env.tmp / "remote" / "r"
    link = env.tmp / "remote-workspace" / "skills"
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--link", str(link), "--json")
    assert r.code == 0, r.err
    assert r.json()["link"] == str(link) and os.readlink(link) == str(dest)
    assert (link / "notes.txt").read_text() == "one\n"
    real = env.tmp / "remote-workspace" / "real-skills"
    real.mkdir()
    (real / "mine.md").write_text("keep me")
    r = env.run("sync", str(repo), "--to", "box", "--dest", str(dest), "--link", str(real))
    assert r.code == 1 and "not a symlink" in r.err
    assert (real / "mine.md").read_text() == "keep me"


def test_a_repository_the_host_cannot_fetch_and_no_bundle_is_possible(env: Env, repo: Path) -> None:
    r = env.run("sync", "https://127.0.0.1:9/nothing.git", "--to", "box", "--dest", str(env.tmp / "x"))
    assert r.code == 1 and "cannot fetch" in r.err and r.err.count("\n") == 1
    assert not (env.tmp / "x").exists()


def test_a_local_host_reads_the_checkout_itself(env: Env) -> None:
    work = env.tmp / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    commit(work, "one\n")  # no origin at all: this machine needs none
    remote_routes(env)
    dest = env.tmp / "copy"
    r = env.run("sync", str(work), "--to", "here", "--dest", str(dest), "--json")
    assert r.code == 0, r.err
    assert (r.json()["method"], r.json()["action"], r.json()["carrier"]) == ("path", "cloned", "local")
    newer = commit(work, "two\n")
    r = env.run("sync", str(work), "--to", "here", "--dest", str(dest), "--json")
    assert (r.json()["action"], git(dest, "rev-parse", "HEAD")) == ("fast-forwarded", newer)
