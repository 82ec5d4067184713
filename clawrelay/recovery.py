"""After a crash: attempts that started and never ended, told for what they are.

A sender that dies mid-attempt (`kill -9`, a power cut, a full disk under the journal) leaves its
attempt `started` in the journal and its claim free: the kernel dropped the flock with the
process. Whoever looks next (every command that opens the journal, and every retry before it
resends) takes the claim, so it knows the sender is gone, and closes such attempts as `ambiguous`
with reason `interrupted`: the work may have happened.

Whether the message is sent again depends on the transport (`Transport.resend_window`): where a
resend is harmless (sessions_send inside the gateway's idempotency window, memory_file, which finds
its id in the note) the message stays queued and the next retry resends it; anywhere else (a
`command` program, a node run, a Telegram message) it becomes `ambiguous`, and only a person's
`outbox retry ID` sends it again.
"""

from __future__ import annotations

from clawrelay.journal import Journal, MessageRecord, ResendPolicy, now_ms
from clawrelay.outcome import Outcome, Status
from clawrelay.reasons import Reason


def resend_safe(transport: str, started_ms: int) -> bool:
    """The transports' own rule, imported only when there is something to recover."""
    from clawrelay.transports import resend_window

    return within_window(resend_window(transport), started_ms)


def within_window(window: float, started_ms: int) -> bool:
    """An attempt that started at `started_ms` is still inside a resend window of `window`
    seconds: one rule, whoever says how long the window is (the transports' table or a router's
    own transports)."""
    return now_ms() - started_ms <= window * 1000


def recover(journal: Journal, policy: ResendPolicy = resend_safe) -> list[str]:
    """Close the attempts of every sender that died mid-attempt; the messages recovered."""
    done = []
    for message_id in journal.open_attempts():
        claim = journal.claim(message_id)
        if claim is None:
            continue  # its sender is alive: in flight, not interrupted
        status = None
        try:
            status = journal.close_interrupted(message_id, policy)
        finally:
            claim.release(finished=status not in (None, Status.QUEUED, Status.OFFERED))
        if status is not None:
            done.append(message_id)
    return done


def still_resendable(record: MessageRecord, policy: ResendPolicy = resend_safe) -> bool:
    """Before an automatic retry: every interrupted attempt of the last run may still be resent
    (a gateway's idempotency window may have passed since it was recovered)."""
    return all(
        policy(a.transport, a.started_ms)
        for a in record.attempts
        if a.run == record.runs
        and a.reason == Reason.INTERRUPTED
        and a.outcome is Outcome.AMBIGUOUS
        and a.retryable
    )
