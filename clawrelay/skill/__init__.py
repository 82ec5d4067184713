"""The OpenClaw skill that lets an agent use clawrelay: rendered from routes.yaml, installed once.

The skill's text lists this instance's targets (names and aliases), so an agent that hears
"给小m发消息" finds 小m in it. The installed file ends with a checksum line: an install over a
file clawrelay wrote replaces it, but a file someone edited is only replaced with --force.

The agent runs clawrelay through OpenClaw's `exec` tool, a shell, with the gateway's PATH,
working folder and environment, not the user's. So the skill gives each command as the exact
`exec` arguments: the command names clawrelay by absolute path, its routes file and state dir
travel in `env`, and so does every word that comes from the user or the model (`<TARGET>`,
`<MESSAGE>`, …). The command only says `"$CLAWRELAY_MESSAGE"`: a shell expands a double-quoted
parameter once and never reads its value as shell text, so no content can break out of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
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


class SkillRefused(ClawrelayError):
    reason = Reason.CONFIG
    exit_code = 2


@dataclass(frozen=True)
class Install:
    """What the gateway's `exec` needs to run this clawrelay: its absolute argv, the routes it
    reads (an absolute path, or `builtin`) and its state dir."""

    argv: tuple[str, ...]
    config: str
    home: str

    @classmethod
    def this(cls, routes: Routes) -> Install:
        """The clawrelay running now, with the routes it loaded and the state dir it uses."""
        from clawrelay import paths
        from clawrelay.config.loader import BUILTIN

        return cls(
            tuple(paths.this_program()),
            str(routes.path.resolve()) if routes.path else BUILTIN,
            str(paths.state_dir().resolve()),
        )


# The commands the skill teaches: clawrelay's arguments, where `$NAME` is a placeholder's variable,
# and the placeholders the model fills in.
_COMMANDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "send": (
        ["send", "--json", "--", "$CLAWRELAY_TARGET", "$CLAWRELAY_MESSAGE"],
        {"CLAWRELAY_TARGET": "<TARGET>", "CLAWRELAY_MESSAGE": "<MESSAGE>"},
    ),
    "ask": (
        ["send", "--json", "--wait-reply", "3m", "--", "$CLAWRELAY_TARGET", "$CLAWRELAY_MESSAGE"],
        {"CLAWRELAY_TARGET": "<TARGET>", "CLAWRELAY_MESSAGE": "<MESSAGE>"},
    ),
    "event": (
        ["event", "--json", "--", "$CLAWRELAY_TARGET", "$CLAWRELAY_MESSAGE"],
        {"CLAWRELAY_TARGET": "<TARGET>", "CLAWRELAY_MESSAGE": "<MESSAGE>"},
    ),
    "status": (["status", "--json"], {}),
    "exec": (
        ["exec", "--json", "--shell", "--", "$CLAWRELAY_HOST", "$CLAWRELAY_COMMAND"],
        {"CLAWRELAY_HOST": "<HOST>", "CLAWRELAY_COMMAND": "<COMMAND>"},
    ),
    "sync": (
        ["sync", "--json", "--to", "$CLAWRELAY_HOST", "--", "$CLAWRELAY_PATH"],
        {"CLAWRELAY_HOST": "<HOST>", "CLAWRELAY_PATH": "<PATH>"},
    ),
    "log": (["log", "--json"], {}),
    "doctor": (["doctor", "--json"], {}),
}
_WAIT_S = {"ask": 180.0, "exec": 60.0, "sync": 300.0, "doctor": 60.0}  # beyond the chain's deadline


def exec_args(name: str, install: Install, deadline_s: float) -> dict[str, object]:
    """The `exec` tool's arguments for one command: a fixed command line, the values in `env`,
    and a wait long enough that `exec` does not send the command to the background."""
    words, placeholders = _COMMANDS[name]
    line = [
        *(shlex.quote(w) for w in install.argv),
        *(f'"{w}"' if w.startswith("$") else shlex.quote(w) for w in words),
    ]
    env = {"CLAWRELAY_CONFIG": install.config, "CLAWRELAY_HOME": install.home, **placeholders}
    wait = int(deadline_s + _WAIT_S.get(name, 0.0) + 30)
    return {"command": " ".join(line), "env": env, "yieldMs": wait * 1000, "timeoutSeconds": wait}


def render(routes: Routes, install: Install | None = None) -> str:
    """SKILL.md for these routes and this install, sealed with the checksum of its text."""
    install = install or Install.this(routes)
    template = files("clawrelay.skill").joinpath("SKILL.md").read_text(encoding="utf-8")
    deadline = max((routes.deadline(t) for t in routes.config.targets), default=60.0)

    def block(m: re.Match[str]) -> str:
        args = json.dumps(exec_args(m.group(1), install, deadline), ensure_ascii=False, indent=2)
        return f"```json\n{args}\n```"

    text = re.sub(r"\{exec:([a-z]+)\}", block, template.replace("{targets}", _targets(routes)))
    return f"{text}\n{_SEAL}{_digest(text)} -->\n"


def _targets(routes: Routes) -> str:
    c = routes.config
    lines = []
    for name, target in c.targets.items():
        aliases = f" (also: {', '.join(map(_code, target.aliases))})" if target.aliases else ""
        host = f", on host {_code(target.host)}" if target.host else ""
        lines.append(f"- {_code(name)}{aliases}{host}")
    if c.groups:
        lines.append("")
        lines.extend(
            f"- group {_code('@' + g)}: {', '.join(map(_code, members))}" for g, members in c.groups.items()
        )
    hosts = [h for h, cfg in c.hosts.items() if cfg.carriers()]
    if hosts:
        lines.append("")
        lines.append("Hosts for `exec` and `sync`: " + ", ".join(map(_code, hosts)) + ".")
    return "\n".join(lines)


def _code(text: str) -> str:
    """A name from routes.yaml as one Markdown code span on one line: the model reads this file as
    instructions, and a name is the routes file's text, so no content may close the span (its
    fence is longer than any run of backticks inside) or start a line of its own (a line break or
    other control character is shown escaped)."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_clawrelays(existing: str) -> bool:
    """The file is as `skill install` wrote it: its text matches its own seal."""
    body, sep, seal = existing.rpartition(f"\n{_SEAL}")
    return bool(sep) and seal.strip() == f"{_digest(body)} -->"


def openclaw_config() -> dict[str, object]:
    """OpenClaw's own config (`openclaw.json`), where plain JSON can read it; else empty."""
    state = Path(os.environ.get("OPENCLAW_STATE_DIR") or Path.home() / ".openclaw").expanduser()
    config = Path(os.environ.get("OPENCLAW_CONFIG_PATH") or state / "openclaw.json").expanduser()
    try:
        doc = json.loads(config.read_text())
    except (OSError, ValueError):
        return {}  # absent, or JSON5 that plain JSON cannot read
    return doc if isinstance(doc, dict) else {}


def check_visible(install: Install) -> None:
    """Refuse a skill whose commands the gateway's `exec` could not run: an agent sandbox (a
    container that sees neither this clawrelay nor its routes), or a routes file or state dir
    that is not there to read."""
    agents = openclaw_config().get("agents")
    defaults = agents.get("defaults") if isinstance(agents, dict) else None
    sandbox = defaults.get("sandbox") if isinstance(defaults, dict) else None
    mode = sandbox.get("mode") if isinstance(sandbox, dict) else None
    if mode not in (None, "off"):
        raise SkillRefused(
            f"OpenClaw runs its agents' exec in a sandbox (agents.defaults.sandbox.mode: {mode}), which "
            f"cannot see {install.argv[0]} or {install.config}; give the agent host exec "
            "(tools.exec.host: gateway) or install clawrelay inside the sandbox image"
        )
    if install.config != "builtin" and not os.access(install.config, os.R_OK):
        raise SkillRefused(f"{install.config}: the routes file cannot be read, so the gateway could not")


def eligibility(workspace: Path, timeout: float = 90.0) -> str | None:
    """What `openclaw skills list --json` (where `openclaw` is on PATH) says is wrong with the
    installed skill, or None when it is eligible or there is no openclaw here to ask."""
    import shutil
    import subprocess

    program = shutil.which("openclaw")
    if program is None:
        return None
    try:
        out = subprocess.run(
            [program, "skills", "list", "--json"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        doc = json.loads(out.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return "`openclaw skills list --json` gave no answer to check the skill with"
    if not isinstance(doc, dict):
        return None
    seen = doc.get("workspaceDir")
    if seen and Path(str(seen)).expanduser().resolve() != workspace.resolve():
        return f"OpenClaw's workspace is {seen}, not {workspace}: the agent will not see this skill"
    ours = [s for s in doc.get("skills") or [] if isinstance(s, dict) and s.get("name") == "clawrelay"]
    if not ours:
        return "`openclaw skills list` does not list the clawrelay skill"
    if not ours[0].get("eligible") or ours[0].get("disabled"):
        missing = json.dumps(ours[0].get("missing") or {}, ensure_ascii=False)
        return f"`openclaw skills list` shows the clawrelay skill as not eligible (missing: {missing})"
    return None


def default_workspace() -> Path:
    """The workspace OpenClaw itself uses: its config's agents.defaults.workspace, else
    $OPENCLAW_WORKSPACE_DIR, else <state dir>/workspace (state dir: $OPENCLAW_STATE_DIR or ~/.openclaw)."""
    state = Path(os.environ.get("OPENCLAW_STATE_DIR") or Path.home() / ".openclaw").expanduser()
    agents = openclaw_config().get("agents")
    defaults = agents.get("defaults") if isinstance(agents, dict) else None
    ws = defaults.get("workspace") if isinstance(defaults, dict) else None
    if isinstance(ws, str) and ws:
        return Path(ws).expanduser()
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
