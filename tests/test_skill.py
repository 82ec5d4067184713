"""The OpenClaw skill: rendered from the routes, installed idempotently, and seen by the real OpenClaw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import Env, header


def routes(env: Env) -> None:
    env.routes(header(env.workspace) + """
targets:
  xiaom:
    aliases: [小m, Xiaom]
    host: here
    chain: [memory_file]
  ops: {chain: [{command: {argv: ["true"]}}]}
groups:
  everyone: [xiaom, ops]
""")


def test_install_writes_the_skill_with_the_targets_once(env: Env) -> None:
    routes(env)
    ws = env.tmp / "ws"
    first = env.run("skill", "install", "--workspace", str(ws), "--json")
    assert first.code == 0, first.err
    path = ws / "skills" / "clawrelay" / "SKILL.md"
    assert first.json() == {"path": str(path), "result": "installed", "routes": "routes.yaml"}
    text = path.read_text()
    assert text.startswith("---\nname: clawrelay\ndescription: ")
    description = text.split("description: ", 1)[1].split("\n", 1)[0].strip('"')
    assert len(description) < 160
    assert "- `xiaom` (also: 小m, Xiaom), on host `here`" in text and "- group `@everyone`: xiaom, ops" in text
    for trigger in ("send a message to", "给小m发消息", "通知另一个实例", "跨机器执行", "同步到远程", "agent间通信", "实例间通信"):
        assert trigger in text
    assert env.run("skill", "install", "-w", str(ws), "--json").json()["result"] == "unchanged"
    assert env.run("skill", "show").out == text


def test_a_hand_edited_skill_is_replaced_only_with_force(env: Env) -> None:
    routes(env)
    ws = env.tmp / "ws"
    assert env.run("skill", "install", "-w", str(ws)).code == 0
    path = ws / "skills" / "clawrelay" / "SKILL.md"
    env.routes(env.tmp.joinpath("routes.yaml").read_text().replace("[小m, Xiaom]", "[小m, Xiaom, mini]"))
    updated = env.run("skill", "install", "-w", str(ws))  # routes changed, file untouched: updated
    assert updated.code == 0 and updated.out.startswith("updated: ") and "mini" in path.read_text()
    path.write_text(path.read_text() + "\nmy own note\n")
    refused = env.run("skill", "install", "-w", str(ws))
    assert refused.code == 1 and "edited by hand" in refused.err and "--force" in refused.err
    assert path.read_text().endswith("my own note\n")  # left as it was
    forced = env.run("skill", "install", "-w", str(ws), "--force")
    assert forced.code == 0 and "my own note" not in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["SKILL.md"]  # no temp file left


def _skills_list(bin_dir: Path, tmp: Path, ws: Path, with_clawrelay: bool) -> dict:
    state = tmp / f"oc-state-{with_clawrelay}"
    state.mkdir()
    (state / "openclaw.json").write_text(json.dumps({"agents": {"defaults": {"workspace": str(ws)}}}))
    path = [str(bin_dir), "/usr/bin", "/bin"]
    if with_clawrelay:
        path.insert(0, str(Path(sys.executable).parent))
    env = {"PATH": ":".join(path), "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
           "OPENCLAW_STATE_DIR": str(state), "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json"),
           "OPENCLAW_GATEWAY_PORT": "1",  # no gateway: `skills list` reads the workspace itself
           "OPENCLAW_DISABLE_BONJOUR": "1", "OPENCLAW_SKIP_CHANNELS": "1"}
    out = subprocess.run([str(bin_dir / "openclaw"), "skills", "list", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["workspaceDir"] == str(ws)
    (ours,) = [s for s in doc["skills"] if s["name"] == "clawrelay"]
    return ours


def test_the_real_openclaw_lists_it_for_the_model_only_where_clawrelay_is_installed(env: Env) -> None:
    from peer import openclaw_bin

    routes(env)
    ws = env.tmp / "ws"
    assert env.run("skill", "install", "-w", str(ws)).code == 0
    bin_dir = openclaw_bin()
    listed = _skills_list(bin_dir, env.tmp, ws, with_clawrelay=True)
    assert listed["source"] == "openclaw-workspace"
    assert (listed["eligible"], listed["modelVisible"], listed["disabled"]) == (True, True, False)
    assert listed["description"].startswith("Reach another OpenClaw instance")
    missing = _skills_list(bin_dir, env.tmp, ws, with_clawrelay=False)
    assert (missing["eligible"], missing["modelVisible"]) == (False, False)
    assert missing["missing"]["bins"] == ["clawrelay"]
