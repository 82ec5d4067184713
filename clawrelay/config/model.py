"""The routes.yaml (version 1) schema.

Closed everywhere (`config.schema.Model`): a misspelt key is an error with its line, not a
silently ignored option. Cross-references (a step's gateway, a target's host) are checked by
`config.refs`, which knows the YAML lines; this module only says what each mapping may hold.
A chain step's options are its transport's own (`transports.registry`): this module knows none.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from clawrelay.config.durations import format_duration, parse_duration
from clawrelay.config.schema import Before, Check, Dump, Model, Tagged
from clawrelay.secrets import REF, TOKEN_ENV, Secret, remember, url_password, userinfo_password, value_of

Duration = Annotated[float, Before(parse_duration), Dump(format_duration)]
OnAmbiguous = Literal["continue", "stop"]
CarrierName = Literal["local", "ssh", "node"]
Retries = Annotated[int, Meta(ge=0, le=10)]


def _to_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError('a secret is a string such as "${MY_TOKEN}"')
    return Secret(value)


SecretStr = Annotated[Secret, Before(_to_secret), Dump(Secret.describe)]


class Defaults(Model, frozen=True):
    timeout: Duration = 10.0
    retries: Retries = 1
    deadline: Duration = 120.0
    on_ambiguous: OnAmbiguous = "continue"
    max_hops: Annotated[int, Meta(ge=1, le=100)] = 8


class OutboxPolicy(Model, frozen=True):
    expire: Duration = 3 * 86400.0
    backoff: Duration = 60.0
    max_backoff: Duration = 3600.0


def _ws_url(v: str) -> str:
    if not v.startswith(("ws://", "wss://")):
        raise ValueError(f"{v!r} is not a gateway URL; use ws://host:port or wss://host")
    return v


class Gateway(Model, frozen=True):
    url: Annotated[str, Check(_ws_url)]
    token: SecretStr | None = None

    def resolve_token(self, fallback_env: str = TOKEN_ENV) -> str | None:
        """The configured token (an unset reference is a ConfigError), else the fallback variable
        (from the environment, else the secrets file)."""
        return self.token.reveal() if self.token else value_of(fallback_env)


def _http_url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError(f"{v!r} is not a Bot API URL; use https://host/bot (the token is appended)")
    return v


def _proxy_url(v: str) -> str:
    if not v.startswith(("http://", "https://", "socks5://", "socks5h://")):
        # the value is not echoed: it may hold a password
        raise ValueError("not a proxy URL; use http://host:port or socks5://host:port")
    password = url_password(v)
    if password and not REF.fullmatch(password):
        remember(password)  # a literal password: masked wherever the URL is printed
    return v


class TelegramBot(Model, frozen=True):
    """The bot the `telegram` steps send with. Only `proxy:` decides whether a proxy is used:
    HTTP(S)_PROXY and ALL_PROXY in the environment are ignored, as for every other transport."""

    token: SecretStr
    # as python-telegram-bot takes it; `{token}` allowed
    base_url: Annotated[str, Check(_http_url)] = "https://api.telegram.org/bot"
    # a URL; a password in it as ${VAR}, expanded only when used
    proxy: Annotated[str, Check(_proxy_url)] | None = None

    @property
    def literal_proxy_password(self) -> bool:
        password = url_password(self.proxy or "")
        return bool(password) and not REF.fullmatch(password or "")


class NodeRef(Model, frozen=True):
    gateway: str
    id: str  # the node id, or its display name
    agent: str = "main"  # whose exec allowlist applies on the node
    approve: Literal["ask", "allow-once"] = "ask"  # when the node's policy asks: a human, or clawrelay


class SshRef(Model, frozen=True):
    host: str  # a name, address, or a Host alias of ~/.ssh/config
    port: Annotated[int, Meta(ge=1, le=65535)] | None = None  # None: ~/.ssh/config's, else 22
    user: str | None = None
    known_hosts: str | None = None
    key: str | None = None


def _argv_prefix(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _not_empty(v: list[str]) -> list[str]:
    if not v or not all(v):
        raise ValueError("a path such as ~/.npm-global/bin/openclaw, or an argv prefix")
    return v


def _known_zone(v: str) -> str:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(v)
    except (KeyError, ValueError) as e:
        raise ValueError(f"unknown timezone {v!r}; use an IANA name such as Asia/Shanghai") from e
    return v


class Host(Model, frozen=True):
    local: bool = False
    node: NodeRef | None = None
    ssh: SshRef | None = None
    workspace: str = "~/.openclaw/workspace"
    timezone: Annotated[str, Check(_known_zone)] | None = None
    # how to run the CLI there: a path, or an argv prefix
    openclaw: Annotated[list[str], Before(_argv_prefix), Check(_not_empty)] = msgspec.field(
        default_factory=lambda: ["openclaw"]
    )
    strip_proxy: bool = True

    def carriers(self) -> list[str]:
        """The carriers this host offers, in the order clawrelay prefers them."""
        local = ["local"] if self.local else []
        return local + [c for c, cfg in (("ssh", self.ssh), ("node", self.node)) if cfg is not None]


class StepBase(Model, frozen=True):
    """What every chain step may set; a transport's options class (`TransportSpec.options`) adds
    its own keys. `transport` is the step's name, set by each options class."""

    transport: ClassVar[str] = ""
    timeout: Duration | None = None
    retries: Retries | None = None
    on_ambiguous: OnAmbiguous | None = None


SHAPE = "a chain step is one transport name with its options, e.g. `- memory_file: {}`"


def _chain_step(value: Any) -> tuple[type[Model], Any, str]:
    """`- memory_file: {…}` (or a bare `- memory_file`): its transport's options class, the
    options, and the name."""
    from clawrelay.transports import registry

    opts: Any
    if isinstance(value, str):
        name, opts = value, {}
    elif isinstance(value, dict) and len(value) == 1:
        ((name, opts),) = value.items()
        opts = {} if opts is None else opts
    else:
        raise ValueError(SHAPE)
    if not isinstance(opts, dict):
        raise ValueError(SHAPE)
    spec = registry.find(name) if isinstance(name, str) else None
    if spec is None or not spec.in_routes:
        raise ValueError(f"unknown transport {name!r} (known: {', '.join(registry.chain_names())})")
    return spec.options, opts, name


Step = Annotated[StepBase, Tagged(_chain_step)]


class Target(Model, frozen=True, kw_only=True):
    aliases: list[str] = msgspec.field(default_factory=list)
    host: str | None = None
    session: str = "agent:main:main"
    chain: Annotated[list[Step], Meta(min_length=1)]
    on_ambiguous: OnAmbiguous | None = None
    deadline: Duration | None = None


def _redis_url(v: str) -> str:
    if not v.startswith(("redis://", "rediss://", "unix://")):
        # the value is not echoed: it may hold a password
        raise ValueError("not a Redis URL; use redis://:${PASSWORD}@host:6379/0 (rediss:// for TLS)")
    password = userinfo_password(v)
    if password and not REF.fullmatch(password):
        remember(password)  # a literal password: masked wherever the URL is printed
    return v


def _node_name(v: str) -> str:
    if not v or len(v) > 64 or not all(c.isalnum() or c in "-_." for c in v):
        raise ValueError("a node name: letters, digits, '-', '_' or '.', at most 64")
    return v


class Fleet(Model, frozen=True, kw_only=True):
    """Relays that share presence, a leader and an outbox through one Redis (docs/fleet.md)."""

    # a URL; its password as ${VAR}, expanded only when the relay connects
    redis: Annotated[str, Check(_redis_url)]
    node: Annotated[str, Check(_node_name)] | None = None  # this relay's name in the fleet; default: `self`
    heartbeat: Annotated[float, Before(parse_duration), Dump(format_duration), Meta(ge=0.2, le=300)] = 5.0
    ttl: Annotated[float, Before(parse_duration), Dump(format_duration), Meta(ge=0.5, le=3600)] = 15.0
    notify: str | None = None  # a target that receives fleet events (joined, left, leader) as system events


def _a_path(v: str) -> str:
    if not v.strip() or "\0" in v:
        raise ValueError("the path of a dotenv file, such as ./secrets.env")
    return v


class Config(Model, frozen=True, kw_only=True):
    version: Literal[1]
    self_: Annotated[str, Meta(min_length=1)] = msgspec.field(name="self")
    # a dotenv file `${VAR}` secrets are read from when the environment lacks them; relative to
    # routes.yaml's folder (config.loader reads and checks it)
    secrets: Annotated[str, Check(_a_path)] | None = None
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    outbox: OutboxPolicy = msgspec.field(default_factory=OutboxPolicy)
    gateways: dict[str, Gateway] = msgspec.field(default_factory=dict)
    telegram: TelegramBot | None = None
    hosts: dict[str, Host] = msgspec.field(default_factory=dict)
    targets: Annotated[dict[str, Target], Meta(min_length=1)]
    groups: dict[str, list[str]] = msgspec.field(default_factory=dict)
    fleet: Fleet | None = None
