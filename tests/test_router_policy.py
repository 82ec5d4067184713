"""The retry policy in isolation: exponential backoff with jitter, and a server's retry-after honoured."""

from __future__ import annotations

from tenacity import RetryCallState

from clawrelay.outcome import StepResult
from clawrelay.router import retry_wait


def state(attempt: int, result: StepResult) -> RetryCallState:
    rs = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    rs.attempt_number = attempt
    rs.set_result(result)
    return rs


def test_backoff_grows_with_each_attempt_within_its_jitter() -> None:
    wait = retry_wait(initial=0.5, maximum=30)
    failed = StepResult.failed("connection_refused", retryable=True)
    for attempt, base in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)):
        waits = [wait(state(attempt, failed)) for _ in range(50)]
        assert all(base <= w <= base + 0.5 for w in waits)
        assert len(set(waits)) > 1  # jittered, so retries from many senders spread out


def test_retry_after_is_a_floor_never_cut_short() -> None:
    wait = retry_wait(initial=0.5, maximum=30)
    told = StepResult.failed("rate_limited", retryable=True, retry_after=7.0)
    assert all(wait(state(1, told)) == 7.0 for _ in range(20))
    small = StepResult.failed("unavailable", retryable=True, retry_after=0.1)
    assert all(wait(state(3, small)) >= 2.0 for _ in range(20))  # the backoff still applies


def test_backoff_is_capped() -> None:
    wait = retry_wait(initial=0.5, maximum=3)
    failed = StepResult.failed("timeout", retryable=True)
    assert all(wait(state(10, failed)) <= 3.5 for _ in range(20))
