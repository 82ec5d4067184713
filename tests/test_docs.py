"""The docs' relative links lead somewhere, and the README keeps its two first commands."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import Env

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
    """Every key of the model, and of every chain transport's options (their specs')."""
    import msgspec

    from clawrelay.config import model
    from clawrelay.transports import registry

    reference = ROOT.joinpath("docs", "configuration.md").read_text()
    missing = []
    classes = [o for o in vars(model).values() if isinstance(o, type) and o.__module__ == model.__name__]
    classes += [spec.options for spec in registry.specs() if spec.in_routes]
    for obj in classes:
        if issubclass(obj, msgspec.Struct):
            for field in msgspec.structs.fields(obj):
                key = field.encode_name
                # `key` or `key:` as a word of its own: `id:` inside `chat_id:` does not count
                if not re.search(rf"`{key}`|(?<![\w.]){key}:", reference):
                    missing.append(f"{obj.__name__}.{key}")
    assert not missing, f"docs/configuration.md does not describe: {', '.join(missing)}"


def test_the_reason_table_lists_exactly_the_reasons_the_code_has() -> None:
    from clawrelay.reasons import Reason

    text = ROOT.joinpath("docs", "delivery.md").read_text()
    table = text.split("| reason | retried | from |", 1)[1].split("\n\n", 1)[0]
    documented = {
        code for row in table.splitlines()[2:] for code in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }
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
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                if name in ("failed", "ambiguous", "Failure", "err", "_fail") and node.args:
                    found.append(node.args[0])
                if name in ("Broken",) and len(node.args) > 1:
                    found.append(node.args[1])
            elif (
                isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Attribute)
                and node.left.attr == "reason"
            ):
                found += node.comparators
            elif isinstance(node, ast.Dict):
                found += [
                    v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == "reason"
                ]
            for expr in found:
                for const in ast.walk(expr):
                    if (
                        isinstance(const, ast.Constant)
                        and isinstance(const.value, str)
                        and const.value in known
                    ):
                        bare.append(f"{path.relative_to(ROOT)}:{const.lineno}: {const.value!r}")
    assert bare == []


README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_commands() -> list[list[str]]:
    """Every `clawrelay …` command line in README's shell and transcript blocks: the words after
    `clawrelay` (the parts of a pipe or `&&` list each on its own, leading `VAR=…` left out)."""
    import shlex

    commands = []
    for lang, block in FENCE.findall(README.read_text()):
        if lang not in ("", "sh"):
            continue
        for line in block.splitlines():
            for part in re.split(r"\|\||&&|\|", line.removeprefix("$ ")):
                words = shlex.split(part, comments=True)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)
                if words and Path(words[0]).name == "clawrelay":
                    commands.append(words[1:])
    return commands


def readme_routes() -> str:
    return next(block for lang, block in FENCE.findall(README.read_text()) if lang == "yaml")


def options(help_text: str) -> dict[str, bool]:
    """The options a `--help` lists: each spelling, and whether it takes a value."""
    found = {}
    spellings = r"(-[^\s,/]+(?:(?:, | / )-[^\s,/]+)*)"  # `-n, --last`, `--explain / --brief`
    for names, value in re.findall(
        rf"(?m)^  {spellings}(?: ([A-Z\[]\S*(?: [A-Z]+)*))?(?:\s{{2,}}|$)", help_text
    ):
        for name in re.split(r", | / ", names):
            found[name] = bool(value)
    return found


def test_every_clawrelay_command_in_the_readme_uses_only_options_that_exist(env: Env) -> None:
    helps: dict[tuple[str, ...], str] = {}

    def help_of(path: tuple[str, ...]) -> str:
        if path not in helps:
            r = env.run(*path, "--help")
            assert r.code == 0, f"clawrelay {' '.join(path)}: no such command ({r.err.strip()})"
            helps[path] = r.out
        return helps[path]

    commands = readme_commands()
    assert len(commands) > 15 and ["outbox", "list"] in commands
    wrong = []
    for words in commands:
        path: tuple[str, ...] = ()
        i = 0
        while i < len(words) and words[i] != "--":
            word, text = words[i], help_of(path)
            if word.startswith("-"):
                known = options(text)
                name = word.split("=", 1)[0]
                if name not in known:
                    wrong.append(
                        f"clawrelay {' '.join(words)}: {' '.join(('clawrelay', *path))} has no {name}"
                    )
                elif known[name] and "=" not in word:
                    i += 1  # its value
            elif "\nCommands:\n" in text:
                path = (*path, word)
            i += 1
    assert wrong == []


def test_the_readmes_routes_check_and_its_sends_plan(env: Env) -> None:
    (env.tmp / "routes.yaml").write_text(readme_routes())
    check = env.run("routes", "check")
    assert check.code == 0, check.out + check.err
    sends = [words for words in readme_commands() if words[0] == "send" and "--config" not in words]
    assert len(sends) >= 5
    for words in sends:  # every target, alias and @group they name exists; the message may come on stdin
        r = env.run(*words, *(["--dry-run"] if "--dry-run" not in words else []), input="from stdin")
        assert r.code == 0, f"clawrelay {' '.join(words)}: {r.err}"
    # its rungs fail independently: none after the gateway's rides that gateway (no node, no nodes_run)
    plan = env.run("send", "xiaom", "x", "--dry-run", "--json").json()["plan"]
    assert plan[0]["transport"] == "sessions_send" and plan[-1]["transport"] == "telegram"
    assert all(
        p["transport"] not in ("sessions_send", "nodes_run") and "node" not in p["carriers"] for p in plan[1:]
    ), plan

    # the mistake the README shows is the one line routes check prints for it
    shown = re.search(r"`(routes\.yaml:\d+: (\S+): unknown key)`", README.read_text())
    assert shown is not None
    key = shown.group(2).rsplit(".", 1)[1]
    (env.tmp / "routes.yaml").write_text(readme_routes().replace("timeout:", f"{key}:", 1))
    bad = env.run("routes", "check")
    assert bad.code == 2 and shown.group(1) in bad.err + bad.out, bad.err


def test_the_readmes_paths_on_another_host_are_quoted_from_the_local_shell() -> None:
    """An unquoted `~` is this machine's home, expanded before clawrelay sees it: a path that is
    on the host (exec's command, --cwd, sync's --dest and --link) must reach clawrelay as `~`."""
    import itertools
    import shlex

    on_host = ("--cwd", "--dest", "--link")
    wrong = []
    for lang, block in FENCE.findall(README.read_text()):
        for line in block.splitlines() if lang in ("", "sh") else []:
            words = shlex.split(line.removeprefix("$ "), comments=True, posix=False)  # quotes kept
            if len(words) < 2 or Path(words[0]).name != "clawrelay" or words[1] not in ("exec", "sync"):
                continue
            after = words.index("--") if "--" in words else len(words)
            remote = words[after + 1 :] + [v for o, v in itertools.pairwise(words) if o in on_host]
            wrong += [f"{line.strip()}: {w}" for w in remote if w.startswith("~")]
    assert wrong == []
