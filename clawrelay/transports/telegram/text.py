"""What the human reads: a header (from, to, id), why the message came by Telegram, the body.

Telegram allows 4096 characters per message after entity parsing. Lengths are counted in UTF-16
code units, as Telegram counts entity offsets; that is never less than the characters a person
sees, so a part that fits here fits there. A longer message is split into numbered parts, each
with the header, preferably at a line break, and the parts joined give back the body exactly.

The header doubles as the loop guard: a body that already carries it came through Telegram once
and is not sent there again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from clawrelay.envelope import Envelope
from clawrelay.outcome import Attempt, Outcome

LIMIT = 4096
MARKER = "[clawrelay via Telegram]"
_MARKER_RE = re.compile(r"\\?\[clawrelay via Telegram\\?\]", re.IGNORECASE)  # as sent, or MarkdownV2-escaped
_MD2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def came_through_telegram(body: str) -> bool:
    return _MARKER_RE.search(body) is not None


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def escape_md2(text: str) -> str:
    """Every character MarkdownV2 reserves, escaped: the text shows exactly as written."""
    return _MD2_SPECIAL.sub(r"\\\1", text)


def why(earlier: Sequence[Attempt], step_index: int) -> str:
    """The other paths and what became of them, in a few words: the last try of each step."""
    last: dict[int, Attempt] = {}
    for a in earlier:
        last[a.step] = a
    if not last:
        return "Telegram is the first step of the route" if step_index == 1 else "only Telegram was tried"
    words = []
    for a in (last[i] for i in sorted(last)):
        if a.outcome is Outcome.AMBIGUOUS:
            words.append(f"{a.transport} got no answer ({a.reason}): it may have arrived that way too")
        else:
            words.append(f"{a.transport} failed ({a.reason})")
    return "; ".join(words)


@dataclass(frozen=True)
class Part:
    text: str  # as sent (escaped in MarkdownV2)
    body: str  # this part's share of the body, as written


def compose(env: Envelope, reason: str, markdown: bool) -> list[Part]:
    """The message as one or more parts, each within Telegram's limit."""
    first = f"{MARKER} from {env.sender} to {env.target} · id {env.id}"
    intro = f"Why Telegram: {reason}.\n\n"

    def head(i: int, n: int) -> str:
        return first + (f" · part {i}/{n}" if n > 1 else "")

    n = 1
    while True:  # the header's length depends on the number of parts: grow n until they fit
        room = LIMIT - units(head(n, n)) - 1
        if room - units(intro) < 1:
            raise ValueError("the header alone exceeds Telegram's limit")
        chunks = _split(env.body, room - units(intro), room)
        if len(chunks) <= n:
            break
        n = len(chunks)
    n = len(chunks)  # fewer than sized for: a shorter header, which fits all the more
    parts = []
    for i, chunk in enumerate(chunks, 1):
        h = head(i, n)
        lead = intro if i == 1 else ""
        if markdown:
            text = f"*{escape_md2(h)}*\n{escape_md2(lead)}{escape_md2(chunk)}"
        else:
            text = f"{h}\n{lead}{chunk}"
        parts.append(Part(text, chunk))
    return parts


def _split(body: str, room_first: int, room: int) -> list[str]:
    chunks: list[str] = []
    rest = body
    limit = room_first
    while units(rest) > limit:
        cut = _cut(rest, limit)
        chunks.append(rest[:cut])
        rest = rest[cut:]
        limit = room
    chunks.append(rest)
    return chunks


def _cut(text: str, limit: int) -> int:
    """Where to end a part of at most `limit` units: after a line break, else a space, else hard."""
    end, used = 0, 0
    for ch in text:
        w = 2 if ord(ch) > 0xFFFF else 1
        if used + w > limit:
            break
        used += w
        end += 1
    window = text[:end]
    for sep in ("\n", " "):
        at = window.rfind(sep)
        if at >= end // 2:
            return at + 1
    return end
