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


def test_the_reason_table_lists_exactly_the_reasons_the_code_has() -> None:
    from clawrelay.reasons import Reason

    text = ROOT.joinpath("docs", "delivery.md").read_text()
    table = text.split("| reason | retried | from |", 1)[1].split("\n\n", 1)[0]
    documented = {code for row in table.splitlines()[2:] for code in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert documented == {r.value for r in Reason}


def test_every_reason_the_code_gives_is_a_member_of_the_enumeration() -> None:
    """No bare string where a reason is given: `reason=`, a result's or failure's first argument,
    a doctor check's reason, a comparison with `.reason`."""
    import ast

    from clawrelay.reasons import Reason

    known = {r.value for r in Reason}
    bare = []
    for path in sorted((ROOT / "clawrelay").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[ast.expr] = []
            if isinstance(node, ast.Call):
                found += [k.value for k in node.keywords if k.arg == "reason"]
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("failed", "ambiguous", "Failure", "err", "_fail") and node.args:
                    found.append(node.args[0])
                if name in ("Broken",) and len(node.args) > 1:
                    found.append(node.args[1])
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "reason":
                found += node.comparators
            elif isinstance(node, ast.Dict):
                found += [v for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "reason"]
            for expr in found:
                for const in ast.walk(expr):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value in known:
                        bare.append(f"{path.relative_to(ROOT)}:{const.lineno}: {const.value!r}")
    assert bare == []
