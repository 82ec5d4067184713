"""The docs' relative links lead somewhere, and the README keeps its two first commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_relative_links_resolve() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    first_block = ROOT.joinpath("README.md").read_text().split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands[0].endswith('clawrelay send demo "hello from clawrelay" --config builtin')
    assert commands[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in ROOT.joinpath(".ci", "run").read_text()
