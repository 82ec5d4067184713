"""Options whose value may be left out: `send --wait-reply [DURATION]`.

click takes the word after such an option as its value whatever it is (a target, `--json`), so
the command line is read once before click sees it: the option takes the next word only when
that word is a duration, and otherwise gets its default, written `--option=DEFAULT`. Nothing
after `--` is touched. Standard library only: this runs before every command, `--help` included.
"""

from __future__ import annotations

import re

OPTIONAL_VALUE = {"--wait-reply": "3m"}
_DURATION = re.compile(r"\d+(?:\.\d+)?(?:ms|s|m|h|d)?")


def with_optional_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            out.extend(argv[i:])
            break
        if word in OPTIONAL_VALUE:
            given = argv[i + 1] if i + 1 < len(argv) else None
            if given is not None and _DURATION.fullmatch(given):
                out.append(f"{word}={given}")
                i += 2
                continue
            out.append(f"{word}={OPTIONAL_VALUE[word]}")
        else:
            out.append(word)
        i += 1
    return out
