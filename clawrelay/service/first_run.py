"""The cron job's first run, forced by `install` and waited for: proof that the gateway can run
this flusher. The gateway's `ok` only says a command ended well, so a run counts when, besides,
the flusher itself recorded a pass (`last-pass.service.json`) since the run started."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from clawrelay.service import state

if TYPE_CHECKING:
    from clawrelay.openclaw.client import GatewayClient

FIRST_RUN_WAIT = 90.0  # seconds `install` waits for the cron job's first run to end


async def first_run(client: GatewayClient, job_id: str, *, timeout: float) -> dict[str, Any]:
    """`ok`, `said` (for the user), `run_id` once the gateway started it, `pass` when it proved itself.
    `timeout` limits each request; the run itself gets FIRST_RUN_WAIT."""
    import asyncio

    from clawrelay.cli.common import one_line

    started = time.time_ns() // 1_000_000
    run = await client.request("cron.run", {"id": job_id, "mode": "force"}, timeout=timeout)
    run_id = run.get("runId")
    if not run_id:
        return {"ok": False, "said": f"the gateway did not start it ({one_line(str(run), 200)})"}
    end = time.monotonic() + FIRST_RUN_WAIT
    while time.monotonic() < end:
        runs = await client.request("cron.runs", {"id": job_id, "runId": run_id, "limit": 1}, timeout=timeout)
        entry = (runs.get("entries") or [None])[0]
        if isinstance(entry, dict) and entry.get("status") in ("ok", "error", "skipped"):
            mine = state.last_pass(by_service=True) or {}
            passed = mine if mine.get("service") == "cron" and mine.get("finished_ms", 0) >= started else None
            if entry["status"] == "ok" and passed:
                return {"ok": True, "run_id": run_id, "said": f"ok, {_pass_said(passed)}", "pass": passed}
            why = one_line(
                " ".join(str(entry.get(k) or "") for k in ("error", "summary")).strip() or entry["status"],
                300,
            )
            return {"ok": False, "run_id": run_id, "said": f"{entry['status']}: {why}"}
        await asyncio.sleep(0.5)
    return {
        "ok": True,
        "run_id": run_id,
        "said": f"still running after {FIRST_RUN_WAIT:g}s (`clawrelay service status` shows how it ended)",
    }


def _pass_said(p: dict[str, Any]) -> str:
    labels = (
        ("delivered", "delivered"),
        ("still_queued", "tried and still queued"),
        ("ambiguous", "ambiguous"),
        ("errors", "errors"),
        ("left_queued", "left in the outbox"),
    )
    parts = [f"{p.get(k, 0)} {label}" for k, label in labels if p.get(k) or k in ("delivered", "left_queued")]
    return "a pass finished: " + ", ".join(parts)
