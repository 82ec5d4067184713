"""telegram: a message to a human through the routes' bot (`transports.telegram`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Literal

from clawrelay.config.model import StepBase
from clawrelay.transports.spec import TransportSpec

if TYPE_CHECKING:
    from clawrelay.config.model import Config
    from clawrelay.config.routes import PlannedStep
    from clawrelay.probes import Probes


class TelegramStep(StepBase, frozen=True, kw_only=True):
    transport: ClassVar[str] = "telegram"
    chat_id: int | str
    thread_id: int | None = None
    parse_mode: Literal["none", "markdownv2"] = "none"


def _check(config: Config, target: str, step: StepBase) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if config.telegram is None:
        yield (), 'needs the bot: a top-level `telegram: {token: "${TELEGRAM_BOT_TOKEN}"}`'


async def _probe(p: Probes, target: str, step: PlannedStep) -> str:
    from clawrelay.transports.telegram.transport import probe

    opts, bot = step.options, p.routes.config.telegram
    assert isinstance(opts, TelegramStep) and bot is not None  # config.refs guarantees the bot
    return await p.once(("telegram", str(opts.chat_id)), lambda: probe(bot, opts.chat_id, p.timeout))


SPEC = TransportSpec(
    options=TelegramStep,
    impl="clawrelay.transports.telegram.transport:Telegram",
    resend_window=0.0,  # the Bot API has no idempotency key: a resend shows twice
    probe=_probe,
    check=_check,
)
