"""routes.yaml: the documented example is valid, and every kind of mistake names its file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawrelay.config.durations import format_duration, parse_duration
from clawrelay.config.loader import parse_routes
from clawrelay.errors import ConfigError, UnknownTarget
from clawrelay.secrets import scrub

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
version: 1
self: xiaoa
gateways:
  gw: {url: "ws://127.0.0.1:18789", token: "${TEST_GW_TOKEN}"}
hosts:
  mac: {node: {gateway: gw, id: mac}, workspace: /tmp/ws, timezone: Asia/Shanghai}
targets:
  xiaom:
    aliases: [小m, Xiaom2]
    host: mac
    chain:
      - sessions_send: {gateway: gw, timeout: 5s}
      - nodes_run: {timeout: 30s}
groups:
  all: [xiaom]
"""


def errors_of(text: str) -> list[str]:
    routes, errors = parse_routes(text, "r.yaml")
    assert routes is None
    return errors


def test_shipped_example_is_valid_and_matches_the_issue_interface() -> None:
    routes, errors = parse_routes((ROOT / "routes.yaml").read_text(), "routes.yaml")
    assert errors == []
    assert routes is not None
    plan = routes.plan("xiaom")
    assert [s.transport for s in plan] == [
        "sessions_send",
        "nodes_run",
        "agent_cli",
        "memory_file",
        "telegram",
    ]
    assert plan[0].timeout == 5 and plan[2].timeout == 120 and plan[3].timeout == 10
    assert plan[3].carriers == ("ssh", "node")
    assert routes.resolve("小m") == routes.resolve("XIAOM") == "xiaom"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("timeout: 5s", "timeout: 5 parsecs"),
            "r.yaml:12: targets.xiaom.chain[0].sessions_send.timeout:",
        ),
        (GOOD.replace("aliases", "alias"), "r.yaml:9: targets.xiaom.alias: unknown key"),
        (
            GOOD.replace("nodes_run", "carrier_pigeon"),
            "r.yaml:13: targets.xiaom.chain[1]: unknown transport 'carrier_pigeon'",
        ),
        (
            GOOD.replace("{gateway: gw, timeout", "{gateway: gx, timeout"),
            "r.yaml:12: targets.xiaom.chain[0].sessions_send.gateway: unknown gateway 'gx' (known: gw)",
        ),
        (
            GOOD.replace("host: mac", "host: pc"),
            "r.yaml:10: targets.xiaom.host: unknown host 'pc' (known: mac)",
        ),
        (GOOD.replace("Asia/Shanghai", "Asia/Atlantis"), "r.yaml:6: hosts.mac.timezone: unknown timezone"),
        (GOOD.replace("version: 1", "version: 2"), "r.yaml:1: version: must be one of 1"),
        (
            GOOD.replace("all: [xiaom]", "all: [xiaom, nobody]"),
            "r.yaml:15: groups.all[1]: unknown target 'nobody'",
        ),
        (
            GOOD.replace("ws://", "http://"),
            "r.yaml:4: gateways.gw.url: 'http://127.0.0.1:18789' is not a gateway URL",
        ),
        (GOOD + "targets: {}\n", "r.yaml:16: targets: duplicate key"),
        (
            GOOD.replace("groups:", "  xiaoj: {aliases: [XIAOM], chain: [command: {argv: [x]}]}\ngroups:"),
            "r.yaml:14: targets.xiaoj.aliases[0]: 'XIAOM' is already a name or alias of target xiaom",
        ),
        (GOOD.replace("chain:\n", "chain: [\n"), "r.yaml:1"),  # broken YAML still names the file and a line
        (
            GOOD.replace("/tmp/ws", '"${NOT_SET_ANYWHERE}"'),
            "r.yaml:6: hosts.mac.workspace: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            GOOD.replace("id: mac}", "id: mac, approve: always}"),
            "r.yaml:6: hosts.mac.node.approve: must be one of",
        ),
        (
            GOOD.replace("timezone: Asia/Shanghai", "openclaw: []"),
            "r.yaml:6: hosts.mac.openclaw: a path such as",
        ),
    ],
)
def test_each_mistake_names_file_line_and_key(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(e.startswith(expected) for e in errors), errors


def test_a_hosts_openclaw_is_a_path_or_an_argv_prefix() -> None:
    text = GOOD.replace("timezone: Asia/Shanghai", "openclaw: ~/.npm/bin/openclaw")
    routes, errors = parse_routes(text, "r.yaml")
    assert routes is not None and routes.config.hosts["mac"].openclaw == ["~/.npm/bin/openclaw"], errors
    text = GOOD.replace("timezone: Asia/Shanghai", "openclaw: [env, OPENCLAW_CONFIG_PATH=~/x.json, openclaw]")
    routes, errors = parse_routes(text, "r.yaml")
    assert routes is not None and routes.config.hosts["mac"].openclaw[1] == "OPENCLAW_CONFIG_PATH=~/x.json"
    assert routes.config.hosts["mac"].node.approve == "ask" and routes.config.hosts["mac"].strip_proxy


def test_host_steps_need_a_host_and_nodes_run_needs_a_node() -> None:
    text = GOOD.replace("    host: mac\n", "")
    assert any("nodes_run needs the target's `host`" in e for e in errors_of(text))
    text = GOOD.replace("{node: {gateway: gw, id: mac}, ", "{local: true, ")
    assert any("has no `node:`" in e for e in errors_of(text))


def test_secret_is_a_reference_resolved_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_GW_TOKEN", raising=False)
    routes, errors = parse_routes(GOOD, "r.yaml")
    assert errors == [] and routes is not None  # an unset token does not block other transports
    token = routes.config.gateways["gw"].token
    with pytest.raises(ConfigError, match=r"r.yaml:4: gateways.gw.token: environment variable TEST_GW_TOKEN"):
        token.reveal()
    monkeypatch.setenv("TEST_GW_TOKEN", "s3cret-gateway-token")
    assert token.reveal() == "s3cret-gateway-token"
    assert "s3cret" not in repr(token) and "s3cret" not in str(routes.resolved())
    assert scrub("auth failed for s3cret-gateway-token") == "auth failed for ***"


def test_groups_and_aliases_expand_in_order_without_repeats() -> None:
    routes, _ = parse_routes(GOOD, "r.yaml")
    assert routes is not None
    assert routes.expand("@all,Xiaom2,小m") == ["xiaom"]
    with pytest.raises(UnknownTarget, match="unknown group '@none'"):
        routes.expand("@none")
    with pytest.raises(UnknownTarget, match="unknown target 'xiaoz'"):
        routes.expand("xiaoz")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5), ("2m", 120), ("1h", 3600), ("3d", 259200), ("7", 7), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["0s", "-1s", "5 minutes", "", True])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for text in ("500ms", "5s", "2m", "1h", "3d"):
        assert format_duration(parse_duration(text)) == text


def test_scrub_masks_tokens_that_did_not_come_from_the_config() -> None:
    from clawrelay.secrets import remember

    remember("env-token-77aa")
    assert scrub('{"payload": {"token": "env-token-77aa"}}') == '{"payload": {"token": "***"}}'
