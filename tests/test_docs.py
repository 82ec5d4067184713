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


def test_the_routes_reference_names_every_key_of_the_config_model() -> None:
    from pydantic import BaseModel

    from clawrelay.config import model

    reference = ROOT.joinpath("docs", "configuration.md").read_text()
    missing = []
    for obj in vars(model).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == model.__name__:
            for name, field in obj.model_fields.items():
                key = field.alias or name
                if key == "transport":  # a step's name (`- memory_file: {}`), not a key users write
                    continue
                # `key` or `key:` as a word of its own: `id:` inside `chat_id:` does not count
                if not re.search(rf"`{key}`|(?<![\w.]){key}:", reference):
                    missing.append(f"{obj.__name__}.{key}")
    assert not missing, f"docs/configuration.md does not describe: {', '.join(missing)}"
