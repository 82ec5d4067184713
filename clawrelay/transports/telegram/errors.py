"""What a python-telegram-bot exception means for delivery: a reason, retry or not, sent or not.

Telegram says what went wrong in its `description`; python-telegram-bot keeps it as the
exception text and maps the HTTP status to a class. Network failures keep the httpx exception as
their cause, which tells a request that never left (connect, pool) from one whose answer was lost
(read timeout, dropped connection): only the second may have put a message in the chat.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import timedelta

from clawrelay.errors import ClawrelayError
from clawrelay.reasons import Reason


@dataclass(frozen=True)
class Failure:
    reason: str
    detail: str
    retryable: bool = False
    maybe_sent: bool = False  # the request left and its answer was lost: the message may be there
    retry_after: float | None = None

    def about(self, chat_id: int | str) -> Failure:
        """The same failure, naming the chat when it is the chat's doing."""
        return replace(self, detail=f"chat {chat_id}: {self.detail}") if self.reason in CHAT_REASONS else self


# (text in Telegram's description, reason) for 403 Forbidden and 400 Bad Request, first match wins
_FORBIDDEN = (("bots", Reason.BOT_CHAT), ("blocked", Reason.BLOCKED))
_BAD_REQUEST = (
    ("chat not found", Reason.CHAT_NOT_FOUND),
    ("message is too long", Reason.TOO_LONG),
    ("thread not found", Reason.THREAD_NOT_FOUND),
    ("can't parse entities", Reason.BAD_MARKUP),
)

CHAT_REASONS = frozenset({Reason.FORBIDDEN, Reason.BAD_REQUEST, *(r for _, r in _FORBIDDEN + _BAD_REQUEST)})


def classify(exc: Exception) -> Failure:
    """The meaning of one failed Bot API call. `exc` is any exception the call raised."""
    import httpx
    from telegram import error as tg

    if isinstance(exc, TimeoutError):  # raised by the transport itself: no time left to ask
        return Failure(Reason.TIMEOUT, "the attempt's time ran out before the next request", retryable=True)
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, tg.RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns about the int/timedelta migration on access
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return Failure(
            Reason.RATE_LIMITED,
            f"Telegram's flood control: retry after {seconds:g}s",
            retryable=True,
            retry_after=seconds,
        )
    if isinstance(exc, tg.InvalidToken):
        return Failure(Reason.AUTH, "Telegram rejected the bot token (check `telegram.token`)")
    if isinstance(exc, tg.Forbidden):
        reason = _match(text, _FORBIDDEN, Reason.FORBIDDEN)
        if reason == Reason.BOT_CHAT:
            text = f"a bot ({text}); clawrelay never writes to bots"
        return Failure(reason, text)
    if isinstance(exc, tg.BadRequest):
        return Failure(_match(text, _BAD_REQUEST, Reason.BAD_REQUEST), text)
    if isinstance(exc, tg.TimedOut):
        cause = exc.__cause__
        if isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout):
            return Failure(Reason.TIMEOUT, "no connection to the Bot API in time", retryable=True)
        return Failure(Reason.TIMEOUT, "no answer from the Bot API in time", retryable=True, maybe_sent=True)
    if isinstance(exc, tg.NetworkError):
        cause = exc.__cause__
        if "(407)" in text or (isinstance(cause, httpx.ProxyError) and "407" in str(cause)):
            # the proxy's own answer: a 407 response (http target) or a refused CONNECT (https target)
            return Failure(
                Reason.PROXY_AUTH, "the proxy wants other credentials (407): check `telegram.proxy`"
            )
        if isinstance(cause, httpx.ProxyError):
            return Failure(Reason.PROXY_ERROR, f"the proxy refused: {cause}", retryable=True)
        if isinstance(cause, httpx.ConnectError):
            why = "its host name does not resolve here" if _unresolved(cause) else str(cause)
            return Failure(Reason.CONNECTION_REFUSED, f"cannot connect to the Bot API: {why}", retryable=True)
        if isinstance(cause, httpx.TransportError):  # the connection broke after the request left
            return Failure(
                Reason.CONNECTION_LOST,
                f"the connection broke before the answer ({cause})",
                retryable=True,
                maybe_sent=True,
            )
        return Failure(Reason.SERVER_ERROR, text, retryable=True)  # Telegram answered 5xx (or 409)
    if isinstance(exc, tg.TelegramError):  # an answer that is not the Bot API's JSON
        return Failure(Reason.BAD_RESPONSE, text, retryable=True, maybe_sent=True)
    if isinstance(exc, ClawrelayError):  # the routes' own problem (an unset secret): not Telegram's
        raise exc
    # an answer of a shape this python-telegram-bot cannot read (another Bot API server version)
    return Failure(Reason.BAD_RESPONSE, f"{exc.__class__.__name__}: {text}", maybe_sent=True)


def _match(text: str, table: tuple[tuple[str, str], ...], default: str) -> str:
    low = text.lower()
    return next((reason for needle, reason in table if needle in low), default)


def _unresolved(exc: BaseException) -> bool:
    """A DNS failure somewhere under this exception (httpx keeps the socket error as a cause)."""
    import socket

    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, socket.gaierror):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False
