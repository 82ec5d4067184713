"""The memory note's entry format: defined here once, for the local writer, the remote script and
every reader.

An entry is one header line, a blank line, and the body with every line quoted:

    ### 14:03:05 +0800 · clawrelay message from xiaoa · id 01a1fbca-a203-7b39-9dc1-fca48ed68bd4

    > backup finished on the VPS
    > ### 09:00:00 +0000 · clawrelay message from boss · id …   ← only quoted text
    >
    > second paragraph

Why quoting: a header is the only line that starts with `### ` and ends with ` · id <uuid>`, and
every body line starts with `>`, so no body, whatever it holds, can start an entry, end one early,
or make an id look present. "Already there" is a header line with the id, which only a writer
makes. In Markdown the quote also closes whatever the body opens (a code fence, an HTML block) at
its end, so the agent reading the note sees the body as one quoted block.

What a body goes through (the documented normalisation, undone by `parse`): CR LF and a lone CR
become LF, as Markdown reads them anyway, and whitespace at the end is dropped. A NUL cannot be
in a message at all (`envelope.check_text`). The sender is framed too: any character that could
break a line is shown as a space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from clawrelay.envelope import Envelope

PREFIX = "### "
_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ID_RE = re.compile(_ID)
HEADER_RE = re.compile(
    r"### (?P<at>\d\d:\d\d:\d\d [+-]\d{4}) · clawrelay (?P<kind>\w+) from (?P<sender>.*)"
    r" · id (?P<id>" + _ID + ")"
)
MAX_DAYS = 31  # how many daily notes back a retry looks for its id


def normalise(body: str) -> str:
    """The body as it is stored in, and read back from, a note."""
    return body.replace("\r\n", "\n").replace("\r", "\n").rstrip(" \t\n")


def quote(body: str) -> str:
    """Every line of the (normalised) body behind `> ` (an empty line: a bare `>`)."""
    return "\n".join(f"> {line}" if line else ">" for line in normalise(body).split("\n"))


def _one_line(text: str) -> str:
    """Anything that could end a line (or hide as one) becomes a space."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def head_tail(env: Envelope) -> str:
    """The header after its time: what the remote writer puts after the host's own clock."""
    if not ID_RE.fullmatch(env.id):
        raise ValueError(f"not a message id: {env.id!r}")
    return f" · clawrelay {_one_line(env.kind)} from {_one_line(env.sender)} · id {env.id}"


def split_entry(env: Envelope) -> tuple[str, str]:
    """The entry around its time: PREFIX + time + suffix. The remote script puts the host's
    clock between the two, so it writes exactly what `render` would, and knows no format."""
    return PREFIX, f"{head_tail(env)}\n\n{quote(env.body)}\n"


def render(env: Envelope, at: str) -> str:
    prefix, suffix = split_entry(env)
    return prefix + at + suffix


def stamp(when: datetime) -> str:
    return f"{when:%H:%M:%S %z}"


def header_pattern(message_id: str) -> str:
    """A POSIX basic regular expression (grep) for the header line of one id."""
    if not ID_RE.fullmatch(message_id):
        raise ValueError(f"not a message id: {message_id!r}")
    return f"^### .* · id {message_id}$"


def has_entry(text: str, message_id: str) -> bool:
    """The note holds the header line of this id (the same test as `header_pattern`)."""
    return re.search(rf"^### .* · id {re.escape(message_id)}$", text, re.M) is not None


@dataclass(frozen=True)
class Entry:
    at: str
    kind: str
    sender: str
    id: str
    body: str
    line: int  # the header's line number, from 1


def parse(text: str) -> list[Entry]:
    """Every entry of a note, in order. Lines that belong to no entry (the agent's own notes) are
    skipped; an entry's body is the run of quoted lines after its header."""
    return list(_entries(text.split("\n")))


def _entries(lines: list[str]) -> Iterator[Entry]:
    i = 0
    while i < len(lines):
        m = HEADER_RE.fullmatch(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        i += 1
        if i < len(lines) and lines[i] == "":
            i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].startswith(">"):
            body.append(lines[i][2:] if lines[i].startswith("> ") else lines[i][1:])
            i += 1
        yield Entry(m["at"], m["kind"], m["sender"], m["id"], "\n".join(body), start + 1)


def days_to_check(created_ms: int, now: datetime, zone: tzinfo | None) -> list[date]:
    """The daily notes an entry of this message could be in: from the day it was created to
    today (at most MAX_DAYS, newest first). Without a zone (the host's own clock dates it) every
    offset from UTC-12 to UTC+14 is allowed for, so a retry after midnight still finds it."""
    created = datetime.fromtimestamp(created_ms / 1000, UTC)
    if zone is not None:
        first, last = created.astimezone(zone).date(), now.astimezone(zone).date()
    else:
        first = (created - timedelta(hours=12)).date()
        last = (now.astimezone(UTC) + timedelta(hours=14)).date()
    n = max(0, min((last - first).days, MAX_DAYS - 1))
    return [last - timedelta(days=k) for k in range(n + 1)]
