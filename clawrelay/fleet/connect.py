"""The Redis client of the fleet (redis-py's asyncio API), and its failures in clawrelay's terms.

A wrong password is the configuration's fault (exit 2, `fleet_auth`); a Redis that does not
answer is the moment's (exit 1, `fleet_unreachable`). Neither message holds the URL: it may carry
the password. They name the host and port only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from clawrelay.config.model import Fleet
from clawrelay.errors import ClawrelayError, ConfigError, Reason
from clawrelay.secrets import scrub

# redis-py's asyncio client. Its annotations are looser than its behaviour (every reply typed as
# bytes | str | int | None whatever the command and decode_responses), so the fleet's modules take
# it as Any and check what they read where they read it.
Redis: TypeAlias = Any

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 10.0  # longer than any BLOCK the fleet asks for


class FleetUnreachable(ClawrelayError):
    reason = Reason.FLEET_UNREACHABLE
    exit_code = 1


class FleetAuth(ConfigError):
    reason = Reason.FLEET_AUTH


def where(url: str) -> str:
    """host:port (or the socket's path) of a Redis URL, without its userinfo."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
    except ValueError:
        return "the configured Redis"


def client(fleet: Fleet) -> Redis:
    """A client for the fleet's Redis (nothing is connected until the first command)."""
    from redis.asyncio import Redis as Client
    from redis.asyncio.retry import Retry  # the asyncio one: the sync one never retries an awaited call
    from redis.backoff import ExponentialBackoff

    url = expanded(fleet.redis)
    try:
        return Client.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            # one quick retry for a connection the server closed; a Redis that is down is said
            # at once, and the relay's own loop decides when to look again
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
            health_check_interval=30,
        )
    except ValueError:
        raise ConfigError("fleet.redis is not a Redis URL redis-py can use") from None


def expanded(url: str) -> str:
    """The URL with each `${VAR}` replaced by its value; in the userinfo and the query (where a
    password goes) percent-encoded, so a password may hold any character (`/`, `@`, `:`) and
    redis-py decodes it again. A host, port or socket path is put in as it is."""
    from urllib.parse import quote

    from clawrelay.secrets import REF, Secret, remember

    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo_end = len(scheme) + 3 + authority.rfind("@")  # -1 + 3 when there is none: before it
    query = url.find("?")

    def value(m: re.Match[str]) -> str:
        v = Secret(m.group(0), "fleet.redis").reveal()
        if m.start() < userinfo_end or 0 <= query < m.start():
            v = quote(v, safe="")
            remember(v)
        return v

    return REF.sub(value, url)


def translate(e: BaseException, fleet: Fleet) -> ClawrelayError:
    """A redis-py failure as one line that holds no secret."""
    from redis import exceptions as rx

    with contextlib.suppress(ClawrelayError):  # the password known, so masked in what follows
        expanded(fleet.redis)  # (a variable gone since the client was made fails nothing here)
    at = where(fleet.redis)  # the URL as written, no secret in it
    text = str(e)
    if isinstance(e, rx.AuthenticationError) or any(
        word in text for word in ("WRONGPASS", "NOAUTH", "invalid password", "invalid username")
    ):
        return FleetAuth(
            f"fleet: Redis at {at} refused the credentials in fleet.redis",
            fix="check the password (and user) in fleet.redis and the variable it names",
        )
    if isinstance(e, rx.ConnectionError | rx.TimeoutError | OSError | TimeoutError):
        short = scrub(text.splitlines()[0] if text else e.__class__.__name__) or ""
        return FleetUnreachable(f"fleet: cannot reach Redis at {at}: {short[:160]}")
    return ClawrelayError(
        f"fleet: Redis at {at} answered an error: {(scrub(text) or '')[:160]}", reason=Reason.FLEET_ERROR
    )


def is_redis_error(e: BaseException) -> bool:
    from redis import exceptions as rx

    return isinstance(e, rx.RedisError | OSError | TimeoutError)


@asynccontextmanager
async def connected(fleet: Fleet) -> AsyncIterator[Redis]:
    """A client that has answered a PING (for the commands: one line, not a traceback, when not)."""
    redis = client(fleet)
    try:
        try:
            await redis.ping()
        except Exception as e:
            if is_redis_error(e):
                raise translate(e, fleet) from None
            raise
        yield redis
    finally:
        await redis.aclose()
