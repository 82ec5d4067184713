"""What the relay keeps between commands: parsed routes, gateway connections, host carriers.

Commands running inside the relay reach these through `context.resident()`: the router, the
host carriers of `exec`, and `call`/`nodes` take its connections instead of opening their own,
and leave them open for the next command. Routes are parsed once per version of the file (its
stat, the secrets file's, and the values of the `${VAR}`s it names in the command's
environment): a command whose environment gives a variable another value gets routes parsed
with that value, as it would in its own process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawrelay.openclaw.pool import GatewayPool

if TYPE_CHECKING:
    from clawrelay.carriers.hosts import HostCarriers
    from clawrelay.config.routes import Routes

log = logging.getLogger("clawrelay.relay")

_VAR = re.compile(rb"\$\{([A-Za-z_][A-Za-z0-9_]*)")
KEPT_ROUTES = 4  # versions of the routes whose carriers stay open (the current one and a few old)
IDLE_SSH = 300.0  # an ssh connection unused this long is closed


def _stat(path: Path | None) -> tuple[int, ...] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Parsed:
    def __init__(self, routes: Routes, key: tuple[Any, ...]) -> None:
        self.routes = routes
        self.key = key
        self.secrets_path: Path | None = getattr(routes.secrets_file, "path", None)
        self.secrets_stat = _stat(self.secrets_path)


class Resident:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.gateways = GatewayPool(home)
        self.started = time.monotonic()
        self.describe: Callable[[], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._parsed: dict[tuple[Any, ...], _Parsed] = {}
        self._carriers: dict[int, tuple[Routes, HostCarriers, list[float]]] = {}

    # -- routes ----------------------------------------------------------------------------

    def load(self, explicit: str | None) -> Routes:
        """`load_routes(explicit)` for the current command, parsed again only when it changed."""
        from clawrelay.config import default
        from clawrelay.config.loader import find_config, load_routes
        from clawrelay.relay.context import resolve
        from clawrelay.secrets import use_file

        given = find_config(explicit)
        path = Path(resolve(given)) if given is not None else None
        text_vars: set[str] = {default.DEMO_GATEWAY_ENV}
        if path is not None:
            try:
                with open(path, "rb") as f:
                    text_vars |= {m.decode() for m in _VAR.findall(f.read(1 << 20))}
            except OSError:
                pass
        key = (
            str(path) if path is not None else "builtin",
            _stat(path),
            os.environ.get("CLAWRELAY_HOME"),
            tuple(sorted((n, os.environ.get(n)) for n in text_vars)),
        )
        with self._lock:
            found = self._parsed.get(key)
            if found is not None and _stat(found.secrets_path) == found.secrets_stat:
                use_file(found.routes.secrets_file)
                return found.routes
            routes = load_routes(explicit)
            if len(self._parsed) >= 16:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[key] = _Parsed(routes, key)
            return routes

    # -- carriers --------------------------------------------------------------------------

    def carriers_for(self, routes: Routes) -> HostCarriers:
        """The host carriers of this version of the routes, shared by every command using it."""
        from clawrelay.carriers.hosts import HostCarriers

        with self._lock:
            entry = self._carriers.get(id(routes))
            if entry is not None and entry[0] is routes:
                entry[2][0] = time.monotonic()
                return entry[1]
            carriers = HostCarriers(routes, lambda: self.gateways)
            self._carriers[id(routes)] = (routes, carriers, [time.monotonic()])
            return carriers

    def hosts(self) -> dict[str, bool]:
        """Each host with an ssh or node carrier opened: whether one is connected now."""
        out: dict[str, bool] = {}
        with self._lock:
            entries = list(self._carriers.values())
        for _, carriers, _ in entries:
            for (host, _name), carrier in carriers.opened():
                up = getattr(carrier, "connected", None)
                state = bool(up()) if callable(up) else False
                out[host] = out.get(host, False) or state
        return out

    async def tidy(self) -> None:
        """Close what is idle: ssh connections unused for IDLE_SSH, carriers of old routes."""
        now = time.monotonic()
        with self._lock:
            entries = sorted(self._carriers.items(), key=lambda kv: kv[1][2][0], reverse=True)
            old = entries[KEPT_ROUTES:]
            for key, _ in old:
                del self._carriers[key]
            live = [e for _, e in entries[:KEPT_ROUTES]]
        for _, (_, carriers, _) in old:
            await carriers.aclose()
        for _, carriers, _ in live:
            for _, carrier in carriers.opened():
                idle = getattr(carrier, "close_if_idle", None)
                if idle is not None:
                    await idle(IDLE_SSH, now)

    async def aclose(self) -> None:
        with self._lock:
            entries, self._carriers = list(self._carriers.values()), {}
        for _, carriers, _ in entries:
            await carriers.aclose()
        await self.gateways.aclose()


async def keep_gateway(resident: Resident, name: str, url: str, token: str | None) -> None:
    """Hold one authenticated connection to a gateway until cancelled: reconnect with backoff
    when it drops, and drop it when its ticks stop (a gateway that went away without closing)."""
    from clawrelay.openclaw.errors import GatewayError

    backoff = 1.0
    while True:
        try:
            client = await resident.gateways.get(name, url, token, timeout=10)
        except (GatewayError, OSError) as e:
            log.info("gateway %s: %s; again in %.0fs", name, e, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        backoff = 1.0
        interval = ((client.hello.get("policy") or {}).get("tickIntervalMs") or 30000) / 1000
        with client.listen("tick") as ticks:
            while not client.closed:
                try:
                    async with asyncio.timeout(interval * 2.5):
                        await ticks.next()
                except TimeoutError:
                    log.info("gateway %s: no tick for %.0fs; reconnecting", name, interval * 2.5)
                    await client.close()
                except GatewayError:
                    break
        await asyncio.sleep(0.2)
