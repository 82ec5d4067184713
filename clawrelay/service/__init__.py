"""The flusher as a service: what keeps the outbox draining when nobody runs `outbox flush`.

`state` is what every command may ask cheaply (no network, nothing heavier than `json` and
`fcntl`): does a flusher run on this machine? `units` renders the three definitions (a systemd
user unit, a launchd agent, an OpenClaw cron job). `install` is what `clawrelay service
install|status|uninstall` calls: `plan` decides what to put in place, and one module per kind
(`systemd`, `launchd`, `cron`, with `first_run` and `host` under them) puts it there, reports on it
and takes it away again.
"""
