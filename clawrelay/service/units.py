"""The three definitions of a flusher, rendered: a systemd user unit, a launchd agent, and the
params of an OpenClaw cron job (`cron.add`). Pure functions: `service install --dry-run` prints
them, the tests read them, and nothing here touches the machine.

Every definition runs the same clawrelay that installed it (an absolute path), with the routes
file that was in use (`--config ABS`, or `builtin`) and the state dir pinned (`CLAWRELAY_HOME`), so
the service flushes the very outbox `send` fills; `CLAWRELAY_SERVICE=<kind>` marks its passes.
"""

from __future__ import annotations

import hashlib
import plistlib
import re
from pathlib import Path

from clawrelay.service.state import SERVICE_ENV

UNIT = "clawrelay-flush.service"
LABEL = "ai.clawrelay.flush"
JOB_NAME = "clawrelay-flush"
MARK = "# Written by `clawrelay service install`; `clawrelay service uninstall` removes it."
WATCH_INTERVAL = 30.0  # systemd, launchd: `serve --interval 30s`
CRON_INTERVAL = 300.0  # the OpenClaw cron job: one pass every 5 minutes
STOP_TIMEOUT = 150  # seconds the attempt in flight gets to finish on stop (longer than any step's timeout)


def flusher_argv(exe: list[str], config: str, *, watch: bool, interval_s: float) -> list[str]:
    from clawrelay.config.durations import format_duration

    if watch:  # the resident relay: it drains the outbox as `outbox flush --watch` does, and
        # every command of the user's rides its warm connections (docs/relay.md)
        return [
            *exe,
            "serve",
            "--interval",
            format_duration(interval_s),
            "--config",
            config,
        ]
    # one pass; exit 0 when it ran: OpenClaw counts exit 1 as an error, backs the job off up to an
    # hour and disables it after 10 in a row, which a target down for an afternoon would do
    return [*exe, "outbox", "flush", "--exit-zero", "--config", config]


def flusher_env(kind: str, home: Path, path: str | None = None) -> dict[str, str]:
    env = {"CLAWRELAY_HOME": str(home), SERVICE_ENV: kind}
    if path:
        env["PATH"] = path
    return env


# -- systemd -------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def systemd_quote(arg: str) -> str:
    """One word of a unit's command line or Environment= value, as systemd reads it back."""
    text = arg.replace("%", "%%")
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'


def systemd_unit(argv: list[str], env: dict[str, str], env_file: Path) -> str:
    environment = "\n".join(f"Environment={systemd_quote(f'{k}={v}')}" for k, v in env.items())
    return f"""{MARK}
# The flusher: delivers what waits in clawrelay's outbox (docs/fleet.md).
[Unit]
Description=clawrelay: the relay (warm connections for every command) and its outbox flusher
After=network-online.target

[Service]
ExecStart={" ".join(systemd_quote(a) for a in argv)}
{environment}
# variables for clawrelay (gateway tokens, …), if you keep them there: mode 0600
EnvironmentFile=-{systemd_quote(str(env_file))}
Restart=on-failure
RestartSec=10
KillSignal=SIGTERM
TimeoutStopSec={STOP_TIMEOUT}

[Install]
WantedBy=default.target
"""


# -- launchd -------------------------------------------------------------------------------------


def launchd_plist(argv: list[str], env: dict[str, str], log: Path) -> bytes:
    return plistlib.dumps(
        {
            "Label": LABEL,
            "ProgramArguments": argv,
            "EnvironmentVariables": env,
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},  # restarted when it fails, not after a clean stop
            "ThrottleInterval": 10,
            "ExitTimeOut": STOP_TIMEOUT,
            "ProcessType": "Background",
            "StandardOutPath": str(log),
            "StandardErrorPath": str(log),
        },
        sort_keys=False,
    )


# -- the OpenClaw cron job -----------------------------------------------------------------------


def declaration_key(home: Path) -> str:
    """The job's identity on the gateway, one per state dir: `cron.add` with it converges on the
    existing job instead of adding a second, and two outboxes on one gateway get two jobs."""
    return f"{JOB_NAME}:{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"


def cron_job(argv: list[str], env: dict[str, str], interval_s: float, home: Path) -> dict[str, object]:
    return {
        "name": JOB_NAME,
        "declarationKey": declaration_key(home),
        "description": f"clawrelay: deliver what waits in the outbox of {home} (clawrelay service install)",
        "enabled": True,
        "schedule": {"kind": "every", "everyMs": int(interval_s * 1000)},
        "sessionTarget": "isolated",  # a command job: no model turn
        "wakeMode": "now",
        "payload": {
            "kind": "command",
            "argv": argv,
            "env": env,
            "timeoutSeconds": max(60, int(interval_s * 0.8)),
        },
        "delivery": {"mode": "none"},
    }
