"""What systemd and launchd installs do to this machine: run the supervisor's own commands, write
its file. A command that fails, is missing or hangs becomes a ClawrelayError that says which one,
so `service install` ends with the supervisor's words instead of a traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from clawrelay.errors import ClawrelayError, Reason
from clawrelay.service import units

Say = Callable[[str], None]  # reports one step of install or uninstall to the user


def run(argv: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    from clawrelay.cli.common import one_line

    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ClawrelayError(f"{argv[0]} not found on PATH", reason=Reason.NOT_SUPPORTED) from None
    except subprocess.TimeoutExpired:
        raise ClawrelayError(
            f"`{' '.join(argv)}` did not end within {timeout:g}s", reason=Reason.TIMEOUT
        ) from None
    if check and p.returncode != 0:
        said = one_line(p.stderr.strip() or p.stdout.strip() or "no output", 200)
        raise ClawrelayError(f"`{' '.join(argv)}` failed (exit {p.returncode}): {said}", reason=Reason.ERROR)
    return p


def ran(argv: list[str], say: Say) -> None:
    """Run a step that must succeed, and tell the user it did."""
    run(argv)
    say(f"ran {' '.join(argv)}")


def write_file(path: Path, content: bytes, say: Say) -> str:
    """`written`, `replaced` or `unchanged`. A file there that clawrelay did not write is kept as .bak."""
    old = path.read_bytes() if path.exists() else None
    if old == content:
        say(f"{path}: unchanged")
        return "unchanged"
    path.parent.mkdir(parents=True, exist_ok=True)
    if old is not None and units.MARK.encode() not in old and b"clawrelay service install" not in old:
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(old)
        say(f"{path}: there already, not written by clawrelay: kept as {backup}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    tmp.chmod(0o644)  # a supervisor's file: no secret in it
    os.replace(tmp, path)
    say(f"wrote {path}")
    return "written" if old is None else "replaced"
