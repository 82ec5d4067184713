"""The telegram transport's pure parts: the text a human reads, and what each Bot API error means."""

from __future__ import annotations

import warnings

import httpx
import pytest
from telegram import error as tg

from clawrelay.envelope import Envelope
from clawrelay.outcome import Attempt, Outcome
from clawrelay.transports.telegram.errors import classify
from clawrelay.transports.telegram.text import LIMIT, came_through_telegram, compose, escape_md2, units, why

ENV = Envelope(sender="vps", target="xiaom", body="", id="01a1fc46-fe73-79fc-993b-0646a747718c")


def parts_of(body: str, markdown: bool = False) -> list[str]:
    return [p.body for p in compose(Envelope(**{**ENV.__dict__, "body": body}), "because", markdown)]


def test_a_short_message_is_one_part_without_a_number() -> None:
    (part,) = compose(Envelope(**{**ENV.__dict__, "body": "hi"}), "sessions_send failed (timeout)", False)
    assert part.text == (
        "[clawrelay via Telegram] from vps to xiaom · id 01a1fc46-fe73-79fc-993b-0646a747718c\n"
        "Why Telegram: sessions_send failed (timeout).\n\nhi"
    )


@pytest.mark.parametrize(
    "body",
    [
        "😀" * 5000,  # astral characters only: 2 units each, never cut in half
        "a" * 4060 + "😀" * 40,  # the limit falls inside an emoji
        "word " * 3000,  # spaces, no line breaks
        "z" * 9000,  # nothing to cut at
        "\n".join("line" for _ in range(3000)),
    ],
)
def test_parts_fit_the_limit_and_join_back_to_the_body(body: str) -> None:
    parts = compose(Envelope(**{**ENV.__dict__, "body": body}), "because", False)
    assert len(parts) > 1
    assert "".join(p.body for p in parts) == body
    assert all(units(p.text) <= LIMIT for p in parts)
    assert all(p.text.split("\n", 1)[0].endswith(f"part {i}/{len(parts)}") for i, p in enumerate(parts, 1))


def test_the_part_count_settles_when_it_gains_a_digit() -> None:
    body = "q" * (LIMIT - 120) * 10  # about ten parts: "part 10/10" is longer than "part 9/9"
    parts = compose(Envelope(**{**ENV.__dict__, "body": body}), "because", False)
    assert len(parts) >= 10
    assert all(units(p.text) <= LIMIT for p in parts)
    assert "".join(p.body for p in parts) == body


def test_markdownv2_escapes_every_reserved_character() -> None:
    assert escape_md2(r"_*[]()~`>#+-=|{}.!\ ok") == r"\_\*\[\]\(\)\~\`\>\#\+\-\=\|\{\}\.\!\\ ok"
    (part,) = compose(Envelope(**{**ENV.__dict__, "body": "1.5 (beta)!"}), "x", True)
    assert part.text.startswith(r"*\[clawrelay via Telegram\] from vps to xiaom · id 01a1fc46\-")
    assert part.text.endswith(r"1\.5 \(beta\)\!")


def test_markdown_parts_are_split_on_the_text_as_shown() -> None:
    body = "." * 6000  # escaping doubles the bytes sent; Telegram counts the text after parsing
    assert len(parts_of(body, markdown=True)) == 2


def test_the_header_is_recognised_as_sent_and_as_escaped() -> None:
    (part,) = compose(Envelope(**{**ENV.__dict__, "body": "hi"}), "x", False)
    (md,) = compose(Envelope(**{**ENV.__dict__, "body": "hi"}), "x", True)
    assert came_through_telegram("fwd: " + part.text)
    assert came_through_telegram(md.text)
    assert not came_through_telegram(
        "[clawrelay] from vps · id 1\nhi"
    )  # a gateway headline is not Telegram's


def test_why_names_each_step_once_with_its_last_outcome() -> None:
    earlier = [
        Attempt(step=1, transport="sessions_send", outcome=Outcome.FAILED, reason="connection_refused"),
        Attempt(step=1, transport="sessions_send", outcome=Outcome.AMBIGUOUS, reason="timeout"),
        Attempt(step=2, transport="memory_file", outcome=Outcome.FAILED, reason="host_key_unknown"),
    ]
    assert why(earlier, 3) == (
        "sessions_send got no answer (timeout): it may have arrived that way too; "
        "memory_file failed (host_key_unknown)"
    )
    assert why([], 1) == "Telegram is the first step of the route"
    assert why([], 4) == "only Telegram was tried"


def _caused(exc: Exception, cause: BaseException) -> Exception:
    exc.__cause__ = cause
    return exc


def _retry_after(seconds: int) -> tg.RetryAfter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # python-telegram-bot's own constructor warns; not ours to fix
        return tg.RetryAfter(seconds)


REQ = httpx.Request("POST", "http://127.0.0.1/bot/sendMessage")


@pytest.mark.parametrize(
    ("exc", "reason", "retryable", "maybe_sent"),
    [
        (_retry_after(7), "rate_limited", True, False),
        (tg.InvalidToken("The token `1:x` was rejected by the server."), "auth", False, False),
        (tg.Forbidden("Forbidden: bot can't send messages to bots"), "bot_chat", False, False),
        (tg.Forbidden("Forbidden: bot was blocked by the user"), "blocked", False, False),
        (tg.Forbidden("Forbidden: bot was kicked from the group chat"), "forbidden", False, False),
        (tg.BadRequest("Bad Request: chat not found"), "chat_not_found", False, False),
        (tg.BadRequest("Bad Request: message is too long"), "too_long", False, False),
        (
            tg.BadRequest("Bad Request: can't parse entities: Character '.' is reserved"),
            "bad_markup",
            False,
            False,
        ),
        (tg.BadRequest("Bad Request: wrong file identifier"), "bad_request", False, False),
        (_caused(tg.TimedOut(), httpx.ConnectTimeout("x", request=REQ)), "timeout", True, False),
        (_caused(tg.TimedOut(), httpx.PoolTimeout("x", request=REQ)), "timeout", True, False),
        (_caused(tg.TimedOut(), httpx.ReadTimeout("x", request=REQ)), "timeout", True, True),
        (
            _caused(tg.NetworkError("httpx.ConnectError"), httpx.ConnectError("refused", request=REQ)),
            "connection_refused",
            True,
            False,
        ),
        (
            _caused(
                tg.NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("gone", request=REQ)
            ),
            "connection_lost",
            True,
            True,
        ),
        (
            _caused(tg.NetworkError("httpx.ProxyError"), httpx.ProxyError("503 from proxy")),
            "proxy_error",
            True,
            False,
        ),
        (
            tg.NetworkError("Proxy Authentication Required (407). Parsing the server response b'' failed"),
            "proxy_auth",
            False,
            False,
        ),
        (tg.NetworkError("Bad Gateway"), "server_error", True, False),
        (tg.TelegramError("Invalid server response"), "bad_response", True, True),
    ],
)
def test_each_error_has_its_meaning(exc: Exception, reason: str, retryable: bool, maybe_sent: bool) -> None:
    f = classify(exc)
    assert (f.reason, f.retryable, f.maybe_sent) == (reason, retryable, maybe_sent)


def test_retry_after_is_read_without_a_deprecation_warning() -> None:
    exc = _retry_after(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert classify(exc).retry_after == 7.0


def test_a_token_in_an_exception_text_does_not_reach_the_detail() -> None:
    assert "1:x" not in classify(tg.InvalidToken("The token `1:x` was rejected by the server.")).detail


def test_an_answer_the_library_cannot_read_is_bad_response_and_a_config_problem_stays_one() -> None:
    from clawrelay.errors import ConfigError

    f = classify(TypeError("ChatFullInfo.__init__() missing 1 required argument"))
    assert (f.reason, f.retryable, f.maybe_sent) == ("bad_response", False, True)
    assert f.detail.startswith("TypeError: ")
    with pytest.raises(ConfigError, match=r"telegram\.proxy"):
        classify(ConfigError("telegram.proxy: environment variable PW is not set (secret reference)"))
