"""What to run or edit when the bot could not be used: the fix doctor prints under a telegram step.

Known where the failure is made (`transports.telegram.transport`), named by this setup's own keys
and variables, so it can be copied as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clawrelay.reasons import Reason

if TYPE_CHECKING:
    from clawrelay.config.model import TelegramBot

PROXY_FIX = "set the variables telegram.proxy refers to, or remove `proxy:`"


def token_fix(bot: TelegramBot) -> str:
    return f"export {bot.token.ref or 'VAR'}=<the token from @BotFather>"


def telegram_fix(reason: str, bot: TelegramBot) -> str | None:
    """What to run or edit when the Bot API answered getMe or getChat this way."""
    ref = bot.token.ref
    custom = not bot.base_url.startswith("https://api.telegram.org/")
    if reason in (
        Reason.CONNECTION_REFUSED,
        Reason.TIMEOUT,
        Reason.PROXY_ERROR,
        Reason.SERVER_ERROR,
        Reason.BAD_RESPONSE,
    ):
        if bot.proxy:
            return "check telegram.proxy in routes.yaml: that proxy must be running and reach the Bot API"
        if custom:
            return (
                f"check telegram.base_url in routes.yaml ({bot.base_url}): start that Bot API server, "
                "or remove base_url for api.telegram.org"
            )
        return (
            "this machine cannot reach api.telegram.org (curl -sSI https://api.telegram.org shows "
            "why): set telegram.proxy in routes.yaml (its password as ${VAR}), or telegram.base_url"
        )
    fixes: dict[str, str] = {
        Reason.AUTH: f"export {ref or 'TELEGRAM_BOT_TOKEN'}=<the token from @BotFather>",
        Reason.PROXY_AUTH: "correct the user and password of telegram.proxy (the password as ${VAR})",
        Reason.CHAT_NOT_FOUND: "the person opens the bot in Telegram and sends /start; chat_id is their "
        "user id",
        Reason.BOT_CHAT: "set chat_id to a person's chat or a group, never a bot",
        Reason.BLOCKED: "the person unblocks the bot in Telegram",
        Reason.FORBIDDEN: "add the bot to that chat again (it was removed), or set another chat_id",
        Reason.BAD_REQUEST: "check chat_id in routes.yaml: a person's user id, or a group's id (-100…)",
        Reason.RATE_LIMITED: "run doctor again after the wait Telegram asked for",
    }
    return fixes.get(reason)
