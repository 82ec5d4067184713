"""memory_file on a local host, driven directly: real files, real locks, real timezones."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clawrelay.config.loader import parse_routes
from clawrelay.envelope import Envelope
from clawrelay.errors import TransportError
from clawrelay.outcome import Outcome
from clawrelay.transports import AttemptContext
from clawrelay.transports.memory_file import MemoryFile, has_entry


def context(workspace: Path, timezone: str | None = None) -> AttemptContext:
    tz = f", timezone: {timezone}" if timezone else ""
    routes, errors = parse_routes(
        f"""
version: 1
self: xiaoa
hosts: {{here: {{local: true, workspace: "{workspace}"{tz}}}}}
targets: {{xiaom: {{host: here, chain: [memory_file: {{}}]}}}}
""",
        "t.yaml",
    )
    assert routes is not None, errors
    return AttemptContext(routes, "xiaom", routes.plan("xiaom")[0], deadline=time.monotonic() + 10)


def deliver(ctx: AttemptContext, env: Envelope):  # type: ignore[no-untyped-def]
    return asyncio.run(MemoryFile().deliver(env, ctx))


def test_an_id_already_in_the_note_is_not_appended_twice(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    env = Envelope(sender="xiaoa", target="xiaom", body="only once")
    first, second = deliver(ctx, env), deliver(ctx, env)
    assert first.outcome is second.outcome is Outcome.DELIVERED
    assert second.detail.endswith("(already there)")
    (note,) = (tmp_path / "memory").glob("*.md")
    assert note.read_text().count(env.id) == 1 and note.read_text().count("only once") == 1


def test_entries_are_dated_in_the_hosts_timezone(tmp_path: Path) -> None:
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11: always different dates
        ws = tmp_path / zone.replace("/", "_")
        ws.mkdir()
        env = Envelope(sender="xiaoa", target="xiaom", body="dated")
        result = deliver(context(ws, zone), env)
        local = datetime.now(ZoneInfo(zone))
        assert result.detail == str(ws / "memory" / f"{local:%Y-%m-%d}.md")
        text = Path(result.detail).read_text()
        assert f" {local:%z} · clawrelay message from xiaoa · id {env.id}" in text


def test_entries_are_separated_and_earlier_content_is_kept(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    (tmp_path / "memory").mkdir()
    note = tmp_path / "memory" / f"{datetime.now().astimezone():%Y-%m-%d}.md"
    note.write_text("# today\nthe agent's own line, no newline at the end")
    one = Envelope(sender="xiaoa", target="xiaom", body="first\n\n")
    two = Envelope(sender="xiaoa", target="xiaom", body="second")
    deliver(ctx, one)
    deliver(ctx, two)
    text = note.read_text()
    assert text.startswith("# today\nthe agent's own line, no newline at the end\n\n### ")
    assert "\n\n> first\n\n### " in text and text.endswith("\n\n> second\n")
    assert has_entry(text, one.id) and has_entry(text, two.id)
    assert not has_entry(text, one.id[:-1])  # ids match whole, not by prefix


def test_a_missing_workspace_is_an_error_not_something_to_invent(tmp_path: Path) -> None:
    ctx = context(tmp_path / "nope")
    with pytest.raises(TransportError) as e:
        deliver(ctx, Envelope(sender="a", target="xiaom", body="x"))
    assert e.value.reason == "not_found" and not e.value.retryable
    assert not (tmp_path / "nope").exists()


def test_never_writes_outside_the_workspace(tmp_path: Path) -> None:
    ws, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    ws.mkdir()
    elsewhere.mkdir()
    (ws / "memory").symlink_to(elsewhere)
    with pytest.raises(TransportError) as e:
        deliver(context(ws), Envelope(sender="a", target="xiaom", body="x"))
    assert e.value.reason == "unsafe_path"
    assert list(elsewhere.iterdir()) == []

    (ws / "memory").unlink()
    (ws / "memory").mkdir()
    target = elsewhere / "stolen.md"
    (ws / "memory" / f"{datetime.now().astimezone():%Y-%m-%d}.md").symlink_to(target)
    with pytest.raises(TransportError) as e:
        deliver(context(ws), Envelope(sender="a", target="xiaom", body="x"))
    assert e.value.reason == "unsafe_path" and not target.exists()
