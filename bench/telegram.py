#!/usr/bin/env python3
"""`clawrelay send --via telegram` against the plainest ways to send one Telegram message.

Starts the local Bot API server of the tests (tests/programs/fake_telegram.py) and times,
interleaved, N runs of:
  stdlib floor     one sendMessage POST with urllib: the least a Python process can do
  ptb floor        python-telegram-bot's Bot: getMe (entering it) and sendMessage
  clawrelay        `clawrelay send human TEXT --via telegram`: journal, getMe, getChat, sendMessage
and prints the median wall time and peak RSS of each, with the ratio to both floors.

    python bench/telegram.py [--runs 10]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from measure import bench_setup, medians

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

STDLIB = """
import json, os, sys, urllib.parse, urllib.request
data = urllib.parse.urlencode({"chat_id": sys.argv[2], "text": "bench"}).encode()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1] + os.environ["TOKEN"] + "/sendMessage", data, timeout=10) as r:
    sys.exit(0 if json.load(r)["ok"] else 1)
"""

PTB = """
import asyncio, os, sys
from telegram import Bot
from telegram.request import HTTPXRequest
async def main():
    req = lambda: HTTPXRequest(httpx_kwargs={"trust_env": False})
    bot = Bot(os.environ["TOKEN"], base_url=sys.argv[1], request=req(), get_updates_request=req())
    async with bot:
        await bot.send_message(chat_id=int(sys.argv[2]), text="bench")
asyncio.run(main())
"""


def main() -> None:
    from bot_api import ALICE, TOKEN, TOKEN_ENV, FakeTelegram, telegram_routes

    runs, exe, tmp = bench_setup(__doc__, "tg", 10)
    server = FakeTelegram(tmp / "bot-api")
    try:
        routes = tmp / "routes.yaml"
        routes.write_text(
            "version: 1\nself: bench\n"
            + telegram_routes(server.base_url, f"      - telegram: {{chat_id: {ALICE}}}\n")
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "TOKEN": TOKEN,
            TOKEN_ENV: TOKEN,
            "CLAWRELAY_HOME": str(tmp / "state"),
        }
        cases = {
            "stdlib floor (urllib POST)": ([sys.executable, "-c", STDLIB, server.base_url, str(ALICE)], env),
            "ptb floor (Bot.send_message)": ([sys.executable, "-c", PTB, server.base_url, str(ALICE)], env),
            "clawrelay send --via telegram": (
                [exe, "send", "human", "bench", "--via", "telegram", "-c", str(routes)],
                env,
            ),
        }
        med = medians(cases, runs, str(tmp))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    stdlib, ptb = (med[n][0] for n in list(med)[:2])
    print(f"{runs} runs each, interleaved, local Bot API server on loopback; {os.cpu_count()} cpus")
    print(f"{'case':<32} {'median wall':>12} {'x stdlib':>9} {'x ptb':>7} {'peak RSS':>10}")
    for name, (t, m) in med.items():
        print(f"{name:<32} {t * 1000:>9.0f} ms {t / stdlib:>9.2f} {t / ptb:>7.2f} {m / 1024:>7.1f} MB")


if __name__ == "__main__":
    main()
