"""Options whose value may be left out: `send --wait-reply [DURATION]`.

click takes the word after such an option as its value whatever it is (a target, `--json`), so
the command line is read once before click sees it: the option takes the next word only when
that word is a duration, and otherwise gets its default, written `--option=DEFAULT`. Nothing
after `--` is touched. Standard library only: this runs before every command, `--help` included.
"""

from __future__ import annotations

import re

OPTIONAL_VALUE = {"send": {"--wait-reply": "3m"}}  # per command: its options whose value may be left out
_ROOT_TAKES_VALUE = ("-c", "--config")  # the root options that take the next word as their value
_DURATION = re.compile(r"\d+(?:\.\d+)?(?:ms|s|m|h|d)?")


def with_optional_values(argv: list[str]) -> list[str]:
    """argv with each optional-value option of its command written `--option=VALUE`; other
    commands' words (a remote command line of `exec`, say) are left exactly as they are."""
    start = 0
    while start < len(argv) and argv[start].startswith("-"):  # the root's own options
        start += 2 if argv[start] in _ROOT_TAKES_VALUE else 1
    options = OPTIONAL_VALUE.get(argv[start]) if start < len(argv) else None
    if not options:
        return argv
    out: list[str] = argv[: start + 1]
    i = start + 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            out.extend(argv[i:])
            break
        if word in options:
            given = argv[i + 1] if i + 1 < len(argv) else None
            if given is not None and _DURATION.fullmatch(given):
                out.append(f"{word}={given}")
                i += 2
                continue
            out.append(f"{word}={options[word]}")
        else:
            out.append(word)
        i += 1
    return out
