"""The local Bot API server (programs/fake_telegram.py) as a test object, started and stopped by PID."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import program, wait_for

TOKEN = "123456:AAH-fake_Tel3gram-token_for-tests0"
TOKEN_ENV = "TEST_TELEGRAM_TOKEN"
ALICE, HELPER_BOT, HIDDEN_BOT, BLOCKER, OPS, OLD_GROUP, FORUM = 42, 77, 78, 88, -1001, -55, -1002
CHATS: dict[str, dict[str, Any]] = {
    str(ALICE): {"type": "private", "username": "alice", "first_name": "Alice"},
    str(HELPER_BOT): {"type": "private", "username": "helper_bot", "first_name": "Helper", "bot": True},
    str(HIDDEN_BOT): {"type": "private", "first_name": "Other", "bot": True, "hidden": True},
    str(BLOCKER): {"type": "private", "username": "bob", "first_name": "Bob", "blocked": True},
    str(OPS): {"type": "supergroup", "title": "Ops"},
    str(OLD_GROUP): {"type": "group", "title": "Old ops", "migrated_to": OPS},
    str(FORUM): {"type": "supergroup", "title": "Forum", "is_forum": True, "threads": [7]},
}


class FakeTelegram:
    def __init__(self, root: Path, faults: list[dict[str, Any]] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "scenario.json").write_text(
            json.dumps({"token": TOKEN, "chats": CHATS, "faults": faults or []})
        )
        self.proc = subprocess.Popen(program("fake_telegram.py", root), stdin=subprocess.DEVNULL)
        wait_for(lambda: (root / "port").exists() or self.proc.poll() is not None, 20)
        assert self.proc.poll() is None, "the fake Bot API server did not start"
        self.port = int((root / "port").read_text())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = self.root / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def messages(self) -> list[dict[str, Any]]:
        return self._lines("messages.jsonl")

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self._lines("requests.jsonl")
            if method is None or r["method"].lower() == method.lower()
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def telegram_routes(base_url: str, steps: str, proxy: str | None = None) -> str:
    """routes.yaml lines (after the header) for a bot at `base_url` and a target "human"."""
    extra = f', proxy: "{proxy}"' if proxy else ""
    return f"""
telegram: {{token: "${{{TOKEN_ENV}}}", base_url: "{base_url}"{extra}}}
targets:
  human:
    aliases: [小m]
    chain:
{steps}
"""
