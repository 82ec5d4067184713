"""The last rung: a Telegram message to a human, through python-telegram-bot's `Bot`.

Its job is to not fail for silly reasons and never to talk to a bot. So: the environment's
proxies are ignored (only the routes' `proxy:` counts); every request ends before the attempt's
deadline, so this module, not a cancelled task, says what happened; Telegram's flood control is
waited out when the wait fits the deadline; and a chat that is a bot is refused before anything
is sent when `getChat` shows it, and never retried when `sendMessage` says so.

A long message goes as numbered parts. The parts that arrived are remembered for the router's
next try of this step, which carries on with the first missing part: a retry never shows the
human a part twice. A failure after some parts arrived is `ambiguous` (`partial`), since part of
the message is there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from clawrelay.config.model import TelegramBot
from clawrelay.envelope import Envelope
from clawrelay.errors import ConfigError, TransportError
from clawrelay.outcome import StepResult
from clawrelay.reasons import Reason
from clawrelay.secrets import expand
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.specs.telegram import SPEC, TelegramStep
from clawrelay.transports.telegram.errors import Failure, classify
from clawrelay.transports.telegram.fixes import PROXY_FIX, telegram_fix, token_fix
from clawrelay.transports.telegram.text import Part, came_through_telegram, compose, why

if TYPE_CHECKING:
    from telegram import Bot, ChatFullInfo, Message

T = TypeVar("T")
MIN_REQUEST_S = 0.05  # less time than this left: do not start a request
AFTER_WAIT_S = 2.0  # flood control is waited out only when this much is left for the request after it


def request_budget(remaining: float) -> float:
    """Seconds a request may take: it ends a little before the attempt's deadline, so that this
    transport says what happened (sent or not) rather than the router's cancellation."""
    return remaining - min(0.25, remaining / 4)


class Telegram:
    name: ClassVar[str] = SPEC.name
    resend_window: ClassVar[float] = SPEC.resend_window

    def __init__(self) -> None:
        self._progress: dict[str, _Progress] = {}  # by message id: what earlier tries of this step sent

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, TelegramStep)
        if came_through_telegram(env.body):
            return StepResult.failed(
                Reason.LOOP,
                "this message already came through Telegram (it carries the "
                "clawrelay Telegram header); it is not sent there again",
            )
        bot_config = ctx.routes.config.telegram
        if bot_config is None:  # config.refs rules this out
            raise ConfigError("a telegram step needs the top-level `telegram:` bot")
        progress = self._progress.setdefault(env.id, _Progress())
        if not progress.parts:  # composed once: a resumed try must cut the body where the first did
            others = [a for a in ctx.earlier if a.step != ctx.step.index]
            progress.parts = compose(env, why(others, ctx.step.index), opts.parse_mode == "markdownv2")
        send = _Send(ctx, opts, progress)
        try:
            async with _open_bot(bot_config, ctx.remaining()) as bot:
                return await send.run(bot)
        except Exception as e:
            return send.failed(classify(e))


@dataclass
class _Progress:
    parts: list[Part] = field(default_factory=list)
    arrived: list[int] = field(default_factory=list)  # Telegram message ids of the parts that arrived
    label: str = ""  # the chat's name and type, from getChat


class _Send:
    """One attempt: check the chat, then send the parts that have not arrived yet."""

    def __init__(self, ctx: AttemptContext, opts: TelegramStep, progress: _Progress) -> None:
        self.ctx, self.opts, self.progress = ctx, opts, progress
        self.parts = progress.parts
        self.arrived = progress.arrived
        self.chat_id: int | str = opts.chat_id
        self.sending = False  # a sendMessage is the call under way
        self.waited = 0.0
        self.moved: int | None = None

    async def run(self, bot: Bot) -> StepResult:
        if not self.arrived:
            chat = await self._chat(bot)
            if chat is not None:
                if _is_bot(chat, bot):
                    return StepResult.failed(
                        Reason.BOT_CHAT,
                        f"chat {self.chat_id} is a bot (@{chat.username}); clawrelay never writes to bots",
                    )
                self.progress.label = _label(chat)
        for part in self.parts[len(self.arrived) :]:
            message = await self._send(bot, part)
            self.arrived.append(message.message_id)
        return StepResult.delivered(self._summary(self.progress.label))

    async def _chat(self, bot: Bot) -> ChatFullInfo | None:
        """getChat is advisory: it can show a bot before anything is sent, but when it cannot see
        the chat (a bot's id, say), or answers in a shape this library version does not expect (a
        self-hosted Bot API server of another version), sendMessage's answer is the one that decides."""
        from telegram.error import BadRequest, Forbidden

        try:
            return await self._call(bot.get_chat, chat_id=self.chat_id)
        except (BadRequest, Forbidden, TypeError, ValueError, KeyError):
            return None

    async def _send(self, bot: Bot, part: Part) -> Message:
        from telegram.error import ChatMigrated

        kwargs: dict[str, Any] = {"text": part.text, "message_thread_id": self.opts.thread_id}
        if self.opts.parse_mode == "markdownv2":
            kwargs["parse_mode"] = "MarkdownV2"
        self.sending = True  # stays set when the call raises: `failed` needs to know what was under way
        self.ctx.mark_sent()
        try:
            message = await self._call(bot.send_message, chat_id=self.chat_id, **kwargs)
        except ChatMigrated as e:  # a group became a supergroup: same people, new id
            self.chat_id = self.moved = e.new_chat_id
            message = await self._call(bot.send_message, chat_id=self.chat_id, **kwargs)
        self.sending = False
        return message

    async def _call(self, method: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
        """One Bot API call within the deadline, waiting out flood control when the wait fits."""
        from telegram.error import RetryAfter

        while True:
            budget = request_budget(self.ctx.remaining())
            if budget < MIN_REQUEST_S:
                raise TimeoutError
            try:
                return await method(
                    **kwargs,
                    read_timeout=budget,
                    write_timeout=budget,
                    connect_timeout=budget,
                    pool_timeout=budget,
                )
            except RetryAfter as e:
                wait = classify(e).retry_after or 1.0
                if request_budget(self.ctx.remaining() - wait) < AFTER_WAIT_S:
                    raise
                await asyncio.sleep(wait)
                self.waited += wait

    def _summary(self, label: str) -> str:
        where = f"chat {self.opts.chat_id}" + (f" ({label})" if label else "")
        if self.moved is not None:
            where = f"chat {self.moved}; {where} is now chat {self.moved}: set chat_id to it in routes.yaml"
        ids = self.arrived
        said = (
            f"Telegram message {ids[0]} in {where}"
            if len(ids) == 1
            else f"{len(ids)} parts, Telegram messages {', '.join(map(str, ids))}, in {where}"
        )
        if self.waited:
            said += f"; waited {self.waited:g}s for Telegram's flood control"
        return said

    def failed(self, f: Failure) -> StepResult:
        f = f.about(self.chat_id)
        n, k = len(self.parts), len(self.arrived)
        maybe = self.sending and f.maybe_sent
        if k == 0:
            if maybe:
                return StepResult.ambiguous(f.reason, f"{f.detail}; the message may be there")
            return StepResult.failed(f.reason, f.detail, retryable=f.retryable, retry_after=f.retry_after)
        got = f"parts 1–{k} of {n} arrived" if k > 1 else f"part 1 of {n} arrived"
        if maybe:  # part k+1 may have arrived: trying again could show it twice
            return StepResult.ambiguous(f.reason, f"{got}; part {k + 1}: {f.detail}, it may be there")
        return StepResult.ambiguous(
            Reason.PARTIAL,
            f"{got}; part {k + 1}: {f.reason}: {f.detail}",
            retryable=f.retryable,
            retry_after=f.retry_after,
        )


def _is_bot(chat: ChatFullInfo, bot: Bot) -> bool:
    """The bot itself, or a private chat with a bot (only bots' usernames may end in "bot")."""
    if chat.id == bot.id:
        return True
    return chat.type == "private" and (chat.username or "").lower().endswith("bot")


def _label(chat: ChatFullInfo) -> str:
    name = chat.title or " ".join(filter(None, (chat.first_name, chat.last_name))) or chat.username or ""
    return f"{name}, {chat.type}" if name else str(chat.type)


def _open_bot(config: TelegramBot, remaining: float) -> AbstractAsyncContextManager[Bot]:
    """A Bot whose HTTP clients ignore the environment's proxies; entering it calls getMe."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    try:
        token = config.token.reveal()
    except ConfigError as e:
        raise ConfigError(e.message, fix=token_fix(config)) from None
    try:
        proxy = expand(config.proxy, "telegram.proxy") if config.proxy else None
    except ConfigError as e:
        raise ConfigError(e.message, fix=PROXY_FIX) from None
    budget = max(MIN_REQUEST_S, request_budget(remaining))

    try:
        request = HTTPXRequest(
            connection_pool_size=2,
            read_timeout=budget,
            write_timeout=budget,
            connect_timeout=budget,
            pool_timeout=budget,
            proxy=proxy,
            httpx_kwargs={"trust_env": False},
        )
        # getUpdates is never called: the one client serves both slots (no second TLS context)
        return Bot(token, base_url=config.base_url, request=request, get_updates_request=request)
    except RuntimeError as e:  # a socks proxy without python-telegram-bot[socks]
        raise ConfigError(f"telegram.proxy: {e}", fix=PROXY_FIX) from None


async def probe(config: TelegramBot, chat_id: int | str, timeout: float) -> str:
    """For `doctor`: the token works and the chat is a person or a group, with nothing sent."""
    try:
        async with _open_bot(config, timeout) as bot:
            chat = await bot.get_chat(chat_id)
            who = f"bot @{bot.username}"
    except Exception as e:
        f = classify(e).about(chat_id)
        fix = telegram_fix(f.reason, config)
        raise TransportError(f.detail, reason=f.reason, retryable=f.retryable, fix=fix) from None
    if _is_bot(chat, bot):
        raise TransportError(
            f"chat {chat_id} is a bot (@{chat.username}); clawrelay never writes to bots",
            reason=Reason.BOT_CHAT,
            fix=telegram_fix(Reason.BOT_CHAT, config),
        )
    return f"{who}; chat {chat_id} ({_label(chat)})"
