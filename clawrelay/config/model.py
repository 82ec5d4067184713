"""The routes.yaml (version 1) schema.

Closed everywhere (`extra="forbid"`): a misspelt key is an error with its line, not a silently
ignored option. Cross-references (a step's gateway, a target's host) are checked by
`config.refs`, which knows the YAML lines; this module only says what each mapping may hold.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    field_validator,
)

from clawrelay.config.durations import format_duration, parse_duration
from clawrelay.secrets import REF, TOKEN_ENV, Secret, remember, url_password, value_of

Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
OnAmbiguous = Literal["continue", "stop"]
CarrierName = Literal["local", "ssh", "node"]


def _to_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError('a secret is a string such as "${MY_TOKEN}"')
    return Secret(value)


SecretStr = Annotated[Secret, PlainValidator(_to_secret), PlainSerializer(lambda s: s.describe())]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Defaults(Model):
    timeout: Duration = 10.0
    retries: int = Field(1, ge=0, le=10)
    deadline: Duration = 120.0
    on_ambiguous: OnAmbiguous = "continue"
    max_hops: int = Field(8, ge=1, le=100)


class OutboxPolicy(Model):
    expire: Duration = 3 * 86400.0
    backoff: Duration = 60.0
    max_backoff: Duration = 3600.0


class Gateway(Model):
    url: str
    token: SecretStr | None = None

    def resolve_token(self, fallback_env: str = TOKEN_ENV) -> str | None:
        """The configured token (an unset reference is a ConfigError), else the fallback variable
        (from the environment, else the secrets file)."""
        return self.token.reveal() if self.token else value_of(fallback_env)

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError(f"{v!r} is not a gateway URL; use ws://host:port or wss://host")
        return v


class TelegramBot(Model):
    """The bot the `telegram` steps send with. Only `proxy:` decides whether a proxy is used:
    HTTP(S)_PROXY and ALL_PROXY in the environment are ignored, as for every other transport."""

    token: SecretStr
    base_url: str = "https://api.telegram.org/bot"  # as python-telegram-bot takes it; `{token}` allowed
    proxy: str | None = None  # a URL; a password in it as ${VAR}, expanded only when used

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not a Bot API URL; use https://host/bot (the token is appended)")
        return v

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://", "socks5://", "socks5h://")):
            # the value is not echoed: it may hold a password
            raise ValueError("not a proxy URL; use http://host:port or socks5://host:port")
        password = url_password(v)
        if password and not REF.fullmatch(password):
            remember(password)  # a literal password: masked wherever the URL is printed
        return v

    @property
    def literal_proxy_password(self) -> bool:
        password = url_password(self.proxy or "")
        return bool(password) and not REF.fullmatch(password or "")


class NodeRef(Model):
    gateway: str
    id: str  # the node id, or its display name
    agent: str = "main"  # whose exec allowlist applies on the node
    approve: Literal["ask", "allow-once"] = "ask"  # when the node's policy asks: a human, or clawrelay


class SshRef(Model):
    host: str  # a name, address, or a Host alias of ~/.ssh/config
    port: int | None = Field(None, ge=1, le=65535)  # None: ~/.ssh/config's, else 22
    user: str | None = None
    known_hosts: str | None = None
    key: str | None = None


class Host(Model):
    local: bool = False
    node: NodeRef | None = None
    ssh: SshRef | None = None
    workspace: str = "~/.openclaw/workspace"
    timezone: str | None = None
    openclaw: list[str] = ["openclaw"]  # how to run the CLI there: a path, or an argv prefix
    strip_proxy: bool = True

    @field_validator("openclaw", mode="before")
    @classmethod
    def _argv_prefix(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("openclaw")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        if not v or not all(v):
            raise ValueError("a path such as ~/.npm-global/bin/openclaw, or an argv prefix")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            from zoneinfo import ZoneInfo

            try:
                ZoneInfo(v)
            except (KeyError, ValueError) as e:
                raise ValueError(f"unknown timezone {v!r}; use an IANA name such as Asia/Shanghai") from e
        return v

    def carriers(self) -> list[str]:
        """The carriers this host offers, in the order clawrelay prefers them."""
        local = ["local"] if self.local else []
        return local + [c for c, cfg in (("ssh", self.ssh), ("node", self.node)) if cfg is not None]


class StepBase(Model):
    transport: str  # each step type narrows it to its own name (the union's tag)
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=0, le=10)
    on_ambiguous: OnAmbiguous | None = None


class SessionsSendStep(StepBase):
    transport: Literal["sessions_send"]
    gateway: str | None = None
    wait_reply: bool = False


class NodesRunStep(StepBase):
    transport: Literal["nodes_run"]


class AgentCliStep(StepBase):
    transport: Literal["agent_cli"]
    via: list[CarrierName] | None = None


class MemoryFileStep(StepBase):
    transport: Literal["memory_file"]
    via: list[CarrierName] | None = None
    wake: bool = True  # then a `wake` on the target's gateway, where it answers, naming the entry


class TelegramStep(StepBase):
    transport: Literal["telegram"]
    chat_id: int | str
    thread_id: int | None = None
    parse_mode: Literal["none", "markdownv2"] = "none"


class CommandStep(StepBase):
    transport: Literal["command"]
    argv: list[str] = Field(min_length=1)
    # variables routes.yaml treats as secrets (and OPENCLAW_GATEWAY_TOKEN) that the program may
    # still inherit; every other variable it inherits anyway, so naming one here is harmless
    env: list[str] = []

    @field_validator("env")
    @classmethod
    def _variable_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not REF.fullmatch(f"${{{name}}}"):
                raise ValueError(f"{name!r} is not an environment variable name")
        return v


STEP_TYPES: dict[str, type[StepBase]] = {
    "sessions_send": SessionsSendStep,
    "nodes_run": NodesRunStep,
    "agent_cli": AgentCliStep,
    "memory_file": MemoryFileStep,
    "telegram": TelegramStep,
    "command": CommandStep,
}
HOST_STEPS = frozenset({"nodes_run", "agent_cli", "memory_file"})


def _tag_step(value: Any) -> Any:
    """`- memory_file: {…}` (or a bare `- memory_file`) → `{"transport": "memory_file", …}`."""
    if isinstance(value, str):
        return {"transport": value}
    if isinstance(value, dict) and len(value) == 1:
        ((name, opts),) = value.items()
        if opts is None:
            opts = {}
        if isinstance(opts, dict):
            return {"transport": name, **opts}
    raise ValueError("a chain step is one transport name with its options, e.g. `- memory_file: {}`")


def _step_tag(value: Any) -> str | None:
    name = value.get("transport") if isinstance(value, dict) else getattr(value, "transport", None)
    return name if name in STEP_TYPES else None


Step = Annotated[
    Annotated[SessionsSendStep, Tag("sessions_send")]
    | Annotated[NodesRunStep, Tag("nodes_run")]
    | Annotated[AgentCliStep, Tag("agent_cli")]
    | Annotated[MemoryFileStep, Tag("memory_file")]
    | Annotated[TelegramStep, Tag("telegram")]
    | Annotated[CommandStep, Tag("command")],
    Discriminator(_step_tag, custom_error_type="unknown_transport", custom_error_message="unknown transport"),
    BeforeValidator(_tag_step),
]


class Target(Model):
    aliases: list[str] = []
    host: str | None = None
    session: str = "agent:main:main"
    chain: list[Step] = Field(min_length=1)
    on_ambiguous: OnAmbiguous | None = None
    deadline: Duration | None = None


class Config(Model):
    version: Literal[1]
    self_: str = Field(alias="self", min_length=1)
    # a dotenv file `${VAR}` secrets are read from when the environment lacks them; relative to
    # routes.yaml's folder (config.loader reads and checks it)
    secrets: str | None = None
    defaults: Defaults = Defaults()
    outbox: OutboxPolicy = OutboxPolicy()
    gateways: dict[str, Gateway] = {}
    telegram: TelegramBot | None = None
    hosts: dict[str, Host] = {}
    targets: dict[str, Target] = Field(min_length=1)
    groups: dict[str, list[str]] = {}

    @field_validator("secrets")
    @classmethod
    def _a_path(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\0" in v):
            raise ValueError("the path of a dotenv file, such as ./secrets.env")
        return v
