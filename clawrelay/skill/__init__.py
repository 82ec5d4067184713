"""The OpenClaw skill that lets an agent use clawrelay: rendered from routes.yaml, installed once.

The skill's text lists this instance's targets (names and aliases), so an agent that hears
"给小m发消息" finds 小m in it. The installed file ends with a checksum line: an install over a
file clawrelay wrote replaces it, but a file someone edited is only replaced with --force.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from clawrelay.errors import ClawrelayError
from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.config.routes import Routes

_SEAL = "<!-- written by `clawrelay skill install`; sha256 "


class SkillEdited(ClawrelayError):
    reason = Reason.SKILL_EDITED
    exit_code = 1


def render(routes: Routes) -> str:
    """SKILL.md for these routes, sealed with the checksum of its text."""
    template = files("clawrelay.skill").joinpath("SKILL.md").read_text(encoding="utf-8")
    text = template.replace("{targets}", _targets(routes))
    return f"{text}\n{_SEAL}{_digest(text)} -->\n"


def _targets(routes: Routes) -> str:
    c = routes.config
    lines = []
    for name, target in c.targets.items():
        aliases = f" (also: {', '.join(target.aliases)})" if target.aliases else ""
        host = f", on host `{target.host}`" if target.host else ""
        lines.append(f"- `{name}`{aliases}{host}")
    if c.groups:
        lines.append("")
        lines.extend(f"- group `@{g}`: {', '.join(members)}" for g, members in c.groups.items())
    hosts = [h for h, cfg in c.hosts.items() if cfg.carriers()]
    if hosts:
        lines.append("")
        lines.append("Hosts for `exec` and `sync`: " + ", ".join(f"`{h}`" for h in hosts) + ".")
    return "\n".join(lines)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_clawrelays(existing: str) -> bool:
    """The file is as `skill install` wrote it: its text matches its own seal."""
    body, sep, seal = existing.rpartition(f"\n{_SEAL}")
    return bool(sep) and seal.strip() == f"{_digest(body)} -->"


def default_workspace() -> Path:
    """The workspace OpenClaw itself uses: its config's agents.defaults.workspace, else
    $OPENCLAW_WORKSPACE_DIR, else <state dir>/workspace (state dir: $OPENCLAW_STATE_DIR or ~/.openclaw)."""
    state = Path(os.environ.get("OPENCLAW_STATE_DIR") or Path.home() / ".openclaw").expanduser()
    config = Path(os.environ.get("OPENCLAW_CONFIG_PATH") or state / "openclaw.json").expanduser()
    try:
        ws = json.loads(config.read_text())["agents"]["defaults"]["workspace"]
        if isinstance(ws, str) and ws:
            return Path(ws).expanduser()
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent, or JSON5 that plain JSON cannot read: the next rule
    if os.environ.get("OPENCLAW_WORKSPACE_DIR"):
        return Path(os.environ["OPENCLAW_WORKSPACE_DIR"]).expanduser()
    return state / "workspace"


def install(text: str, workspace: Path, force: bool) -> tuple[Path, str]:
    """Write <workspace>/skills/clawrelay/SKILL.md atomically: (path, installed|updated|unchanged)."""
    path = workspace / "skills" / "clawrelay" / "SKILL.md"
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    if existing == text:
        return path, "unchanged"
    if existing is not None and not force and not is_clawrelays(existing):
        raise SkillEdited(f"{path} was edited by hand; `clawrelay skill install --force` replaces it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".SKILL.md.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path, "installed" if existing is None else "updated"
