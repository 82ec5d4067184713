"""Units of the carriers and CLI transports that need no server: quoting, proxy stripping, judging output."""

from __future__ import annotations

import json
import subprocess

import pytest

from clawrelay.carriers.proxy import PROXY_VARS, wrap
from clawrelay.carriers.ssh import command_line
from clawrelay.transports.agent_cli import judge, last_json

ARGV = ["printf", "%s\\n", "a b", "it's", '"q"', "$(id)", "`id`", "x;y", "a\nb", "~", "*", "-n"]


@pytest.mark.parametrize("cwd", [None, "/tmp", "~"])
def test_the_ssh_command_line_gives_the_remote_shell_exactly_the_argv(cwd: str | None) -> None:
    line = command_line(ARGV, timeout=5, cwd=cwd, strip_proxy=True)
    out = subprocess.run(
        ["sh", "-c", line],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HTTP_PROXY": "x"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "".join(f"{a}\n" for a in ARGV[2:])


def test_proxy_variables_are_unset_inside_the_command_and_nothing_else() -> None:
    argv = wrap(["env"])
    assert argv[: 1 + 2 * len(PROXY_VARS)] == ["env", *[x for v in PROXY_VARS for x in ("-u", v)]]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**{v: "http://127.0.0.1:9" for v in PROXY_VARS}, "KEEP": "1", "PATH": "/usr/bin:/bin"},
    )
    assert "KEEP=1" in out.stdout and "127.0.0.1:9" not in out.stdout
    assert wrap(["env"], strip=False) == ["env"]


def test_agent_cli_output_is_judged_by_what_it_says() -> None:
    ok = {"runId": "r1", "status": "ok", "result": {"payloads": [{"text": "hi"}]}}
    assert judge(ok, "").outcome == "delivered" and judge(ok, "").reply == "hi"
    embedded = {"payloads": [{"text": "hi"}], "meta": {}}
    assert judge(embedded, "").reason == "embedded_fallback"
    assert judge(ok, "gateway closed; falling back to embedded agent").reason == "embedded_fallback"
    healthy_log = "[plugins] embedded docs index loaded; tip: rerun with --local to skip the gateway"
    assert judge(ok, healthy_log).outcome == "delivered"
    failed = judge({"ok": False, "error": {"message": "Gateway not reachable"}}, "")
    assert (failed.reason, failed.retryable) == ("remote_error", True)
    assert judge(None, "").reason == "bad_output"


def test_the_cli_json_is_found_after_log_lines() -> None:
    text = "[plugins] loaded 3\nwarning: something\n" + json.dumps({"runId": "r", "status": "ok"}, indent=2)
    assert last_json(text) == {"runId": "r", "status": "ok"}
    assert last_json("no json here") is None


class _Carrier:
    """A carrier that fails to start (`spawn_first=False`) or fails after its command left."""

    def __init__(self, name: str, *, fails: bool, spawn_first: bool = False) -> None:
        self.name = self.label = name
        self.fails, self.spawn_first, self.ran = fails, spawn_first, False

    async def run(self, argv, *, timeout, cwd=None, stdin=None, on_spawn=None):  # type: ignore[no-untyped-def]
        from clawrelay.carriers.result import RunResult
        from clawrelay.errors import TransportError

        if self.spawn_first and on_spawn is not None:
            on_spawn()
        if self.fails:
            raise TransportError(f"{self.name}: connection refused", reason="connection_refused")
        self.ran = True
        return RunResult(0, False, b"ok", b"", 1)


def test_run_first_moves_on_only_while_nothing_has_left_and_says_what_failed_before() -> None:
    import asyncio

    from clawrelay.carriers.hosts import run_first
    from clawrelay.errors import TransportError

    down, local = _Carrier("ssh", fails=True), _Carrier("local", fails=False)
    res = asyncio.run(run_first([down, local], ["true"], timeout=lambda: 5))
    assert res.exit_code == 0 and local.ran

    lost, spare = _Carrier("ssh", fails=True, spawn_first=True), _Carrier("local", fails=False)
    with pytest.raises(TransportError, match="ssh: connection refused"):
        asyncio.run(run_first([lost, spare], ["true"], timeout=lambda: 5))
    assert not spare.ran  # it may have run over ssh: never a second time elsewhere

    first, second = _Carrier("node", fails=True), _Carrier("ssh", fails=True)
    with pytest.raises(
        TransportError, match=r"ssh: connection refused \(before that, node: node: connection"
    ):
        asyncio.run(run_first([first, second], ["true"], timeout=lambda: 5))
