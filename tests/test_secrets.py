"""Secrets stay out of what clawrelay prints and out of the programs it runs.

The scrubber masks any long fragment of a secret (a log line shortened in the middle still holds
the token's tail); websockets' debug log of a frame that carries credentials is masked whole;
a library's traceback is one line unless CLAWRELAY_LOG=debug; a `command` rung's program does
not inherit the variables routes.yaml names as secrets unless its step lists them in `env:`.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import sys
from typing import Any

import pytest
from bot_api import TOKEN, TOKEN_ENV, FakeTelegram, telegram_routes
from conftest import Env, header

from clawrelay import secrets

ALPHABET = string.ascii_letters + string.digits + "-_"


def fragments(secret: str, n: int = 8) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def leaked(secret: str, text: str) -> list[str]:
    return sorted(f for f in fragments(secret) if f in text)


# -- scrub ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_REVEALED", set())


def test_scrub_masks_every_fragment_of_eight_or_more_characters(fresh: None) -> None:
    rng = random.Random(13)
    token = "".join(rng.choice(ALPHABET) for _ in range(48))
    other = "".join(rng.choice(ALPHABET) for _ in range(20))
    secrets.remember(token)
    secrets.remember(other)
    for _ in range(2000):
        s = rng.choice([token, other])
        start = rng.randrange(len(s) - 7)
        piece = s[start : rng.randrange(start + 8, len(s) + 1)]
        noise = lambda: "".join(rng.choice(ALPHABET + " :'\"{},…") for _ in range(rng.randrange(0, 30)))  # noqa: E731
        text = noise() + piece + noise() + rng.choice(["", piece[: rng.randrange(len(piece) + 1)], other])
        out = secrets.scrub(text, fragments=True)
        assert out is not None
        assert not leaked(token, out) and not leaked(other, out), (text, out)
    # what is no secret's fragment is left alone
    assert (
        secrets.scrub("the frame ends with … [640 bytes]", fragments=True)
        == "the frame ends with … [640 bytes]"
    )
    assert secrets.scrub(f"x {token[:7]} y {token[-7:]}", fragments=True) == f"x {token[:7]} y {token[-7:]}"
    # outside logs, a program's output or a message sharing a piece with a token is left as it is
    assert secrets.scrub(f"x {token[3:20]} y") == f"x {token[3:20]} y"
    # the tail of a frame shortened in the middle, as websockets logs it
    line = f"""> TEXT '{{"type":"req","params":{{"auth":{{"token":"{token[:5]}' ... '{token[-18:]}"}}}}}}' [640 bytes]"""
    out = secrets.scrub(line, fragments=True)
    assert out is not None and token[-18:] not in out and out.endswith("\"}}}' [640 bytes]")


def test_a_short_secret_is_masked_only_whole(fresh: None) -> None:
    secrets.remember("hunter2")
    assert secrets.scrub("pw hunter2 and hunter", fragments=True) == "pw *** and hunter"
    secrets.remember("abcdefgh")  # eight characters: its only fragment of eight is itself
    assert secrets.scrub("abcdefg abcdefgh", fragments=True) == "abcdefg ***"


# -- websockets frames at CLAWRELAY_LOG=debug ------------------------------------------------------


async def _gateway_call(
    env: Env, device_token: str, args: list[str], extra: dict[str, str], routes: str | None = None
) -> tuple[int, str]:
    """Serve a gateway on a free port, then run the CLI (PORT in `args` and `routes` replaced)."""
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        await ws.send(
            json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n-1"}})
        )
        connect = json.loads(await ws.recv())
        hello = {
            "type": "hello-ok",
            "protocol": 4,
            "server": {"version": "fake"},
            "features": {"methods": ["health"]},
            "auth": {
                "role": "operator",
                "scopes": ["operator.read", "operator.write", "operator.admin"],
                "deviceToken": device_token,
            },
        }
        await ws.send(json.dumps({"type": "res", "id": connect["id"], "ok": True, "payload": hello}))
        async for raw in ws:
            req = json.loads(raw)
            await ws.send(
                json.dumps(
                    {"type": "res", "id": req["id"], "ok": True, "payload": {"ok": True, "note": "x" * 400}}
                )
            )

    async with serve(handler, "127.0.0.1", 0) as server:
        port = str(server.sockets[0].getsockname()[1])
        if routes is not None:
            env.routes(routes.replace("PORT", port))
        proc = await asyncio.create_subprocess_exec(
            *env.cmd(*[a.replace("PORT", port) for a in args]),
            cwd=env.tmp,
            env={**env.vars, "CLAWRELAY_LOG": "debug", **extra},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, err.decode()


@pytest.mark.integration
@pytest.mark.parametrize("how", ["url", "routes"])
def test_no_frame_carrying_a_token_is_logged_unmasked(env: Env, how: str) -> None:
    rng = random.Random(how)
    token = "".join(rng.choice(ALPHABET) for _ in range(64))
    device_token = "".join(rng.choice(ALPHABET) for _ in range(43))
    if how == "url":
        code, err = asyncio.run(
            _gateway_call(
                env,
                device_token,
                ["call", "ws://127.0.0.1:PORT", "health"],
                {"OPENCLAW_GATEWAY_TOKEN": token},
            )
        )
    else:
        routes = (
            header(env.workspace)
            + """
gateways:
  gw: {url: "ws://127.0.0.1:PORT", token: "${GW_TOKEN}"}
targets:
  t: {chain: [{sessions_send: {gateway: gw}}]}
"""
        )
        code, err = asyncio.run(
            _gateway_call(env, device_token, ["call", "gw", "health"], {"GW_TOKEN": token}, routes)
        )
    assert code == 0, err
    assert "> TEXT" in err and "< TEXT" in err  # frames were logged: the check below is not vacuous
    assert not leaked(token, err), err
    assert not leaked(device_token, err), err


# -- a library's traceback -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("level", ["warning", "info", "debug"])
def test_a_library_traceback_is_one_line_unless_debug(env: Env, level: str) -> None:
    server = FakeTelegram(env.tmp / "bot-api", [{"method": "getMe", "garbage": True}])
    try:
        env.routes(
            header(env.workspace)
            + telegram_routes(server.base_url, "      - telegram: {chat_id: 42, retries: 0}\n")
        )
        r = env.run("send", "human", "hello", "--json", **{TOKEN_ENV: TOKEN, "CLAWRELAY_LOG": level})
    finally:
        server.stop()
    doc = r.json()
    assert isinstance(doc, dict)
    assert [(a["outcome"], a["reason"]) for a in doc["attempts"]] == [("failed", "bad_response")]
    assert "Can not load invalid JSON data" in r.err  # python-telegram-bot's own record is shown...
    assert not leaked(TOKEN, r.err)
    if level == "debug":
        assert "Traceback" in r.err  # ...with its traceback only when asked for
        return
    assert "Traceback" not in r.err, r.err
    for line in r.err.splitlines():  # one line per record, the garbage body's newlines collapsed
        assert line.startswith("clawrelay"), r.err


# -- a command rung's environment ----------------------------------------------------------------

SECRET_VARS = {
    "GW_TOKEN": "gw-" + "g" * 40,
    "BOT_TOKEN": "123:" + "b" * 40,
    "PROXY_PW": "pw-" + "p" * 20,
    "OPENCLAW_GATEWAY_TOKEN": "oc-" + "o" * 40,
}
DUMP_ENV = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"


def command_env(env: Env, options: str = "") -> dict[str, Any]:
    out = env.tmp / "env.json"
    argv = json.dumps([sys.executable, "-c", DUMP_ENV, str(out)])
    env.routes(
        header(env.workspace)
        + f"""
gateways:
  gw: {{url: "ws://127.0.0.1:9", token: "${{GW_TOKEN}}"}}
telegram:
  token: "${{BOT_TOKEN}}"
  proxy: "http://relay:${{PROXY_PW}}@127.0.0.1:9"
targets:
  t:
    chain:
      - command: {{argv: {argv}{options}}}
"""
    )
    r = env.run("send", "t", "hello", "--json", **SECRET_VARS, PLAIN_VAR="kept")
    assert r.code == 0, r.out + r.err
    found = json.loads(out.read_text())
    assert isinstance(found, dict)
    return found


def test_a_command_does_not_inherit_the_secret_variables(env: Env) -> None:
    found = command_env(env)
    assert not set(SECRET_VARS) & set(found), sorted(set(SECRET_VARS) & set(found))
    assert found["PLAIN_VAR"] == "kept" and found["CLAWRELAY_TARGET"] == "t" and "CLAWRELAY_ID" in found


def test_a_command_gets_the_secret_variables_its_step_lists(env: Env) -> None:
    found = command_env(env, ", env: [GW_TOKEN, OPENCLAW_GATEWAY_TOKEN, PLAIN_VAR, UNSET_VAR]")
    assert found["GW_TOKEN"] == SECRET_VARS["GW_TOKEN"]
    assert found["OPENCLAW_GATEWAY_TOKEN"] == SECRET_VARS["OPENCLAW_GATEWAY_TOKEN"]
    assert "BOT_TOKEN" not in found and "PROXY_PW" not in found and "UNSET_VAR" not in found
    assert found["PLAIN_VAR"] == "kept"  # naming a variable that is no secret is harmless


def test_env_takes_variable_names_only(env: Env) -> None:
    env.routes(header(env.workspace) + 'targets:\n  t: {chain: [command: {argv: ["true"], env: ["A=1"]}]}\n')
    r = env.run("routes", "check")
    assert (
        r.code == 2
        and "targets.t.chain[0].command.env" in r.err
        and "'A=1' is not an environment variable name" in r.err
    ), r.err
