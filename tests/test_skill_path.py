"""The whole skill path as OpenClaw really runs it.

A second real gateway ("xiaoa") whose model follows SKILL.md literally (tests/programs/fake_model.py:
it reads the skill file, fills the `exec` block's placeholders in as JSON string content and calls
`exec`), run as a service runs: clawrelay NOT on its PATH, its working folder its workspace, no
token in its environment. The user's hostile text must reach the session gateway's session byte
for byte, once, and nothing in it may run on the way."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
from conftest import Env, wait_for
from peer import Gateway

HOSTILE = (
    "the VPS bill is $20 for `hostname` (ask $HOME) and $(touch PWNED) \"double\" 'single' \\\n"
    "EOF\n${PATH} `touch PWNED2` 告诉小m：备份完成了"
)


@pytest.fixture(scope="module")
def xiaoa(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from peer import openclaw_bin, running_gateway

    path = f"{openclaw_bin()}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("clawrelay", path=path) is None, "clawrelay must not be on the gateway's PATH here"
    with running_gateway(tmp_path_factory.mktemp("xiaoa"), path=path, in_workspace=True) as gw:
        yield gw


def test_a_model_following_the_skill_relays_hostile_text_once_and_runs_nothing(
    env: Env, gateway: Gateway, xiaoa: Gateway
) -> None:
    secrets = env.tmp / "secrets.env"
    secrets.write_text(f"XIAOM_GATEWAY_TOKEN={gateway.token}\n")
    secrets.chmod(0o600)
    env.routes(f"""
version: 1
self: xiaoa
secrets: ./secrets.env
gateways:
  xiaom-gw: {{url: "{gateway.url}", token: "${{XIAOM_GATEWAY_TOKEN}}"}}
targets:
  xiaom:
    aliases: [小m, Xiaom]
    session: "agent:main:from-xiaoa"
    chain: [{{sessions_send: {{gateway: xiaom-gw, timeout: 10s}}}}]
""")
    installed = env.run("skill", "install", "-w", str(xiaoa.workspace), "--json")
    assert installed.code == 0, installed.err
    assert "XIAOM_GATEWAY_TOKEN" not in xiaoa.env() and "OPENCLAW_GATEWAY_TOKEN" not in xiaoa.env()

    asked = xiaoa.call(
        "agent",
        {
            "message": f"[[relay 小m]] {HOSTILE}",
            "sessionKey": "agent:main:main",
            "idempotencyKey": str(uuid.uuid4()),
            "deliver": False,
        },
        timeout=180,
    )
    assert asked["ok"], asked
    answer = "\n".join(p.get("text") or "" for p in asked["payload"]["result"]["payloads"])
    assert answer.startswith("RELAYED: "), answer  # the model found the skill, and exec ran clawrelay
    sent = json.loads(answer.split("RELAYED: ", 1)[1].split("\n\n")[0].strip())
    assert (sent["status"], sent["via"], sent["target"]) == ("delivered", "sessions_send", "xiaom"), sent

    (record,) = env.run("log", "--json").json()
    assert record["id"] == sent["id"] and record["body"] == HOSTILE  # as the user wrote it, byte for byte
    wait_for(lambda: gateway.user_messages("agent:main:from-xiaoa", sent["id"]))
    (arrived,) = gateway.user_messages("agent:main:from-xiaoa", sent["id"])  # once
    assert HOSTILE in arrived
    ran = [p for where in (xiaoa.dir, env.tmp) for p in where.rglob("PWNED*")]
    assert ran == []  # no backtick and no $(…) ran on the sender's machine
    assert gateway.token not in json.dumps(record) and gateway.token not in answer
