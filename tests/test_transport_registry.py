"""The transport registry: every spec is whole and light, and a transport is one module and one line.

No server runs here: a transport defined in this module, registered with one call, must be read by
the config loader, checked by refs, planned by routes, looked up by the router's helpers and
probed (or not) by doctor, with nothing else in clawrelay told about it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest

from clawrelay.config.loader import parse_routes
from clawrelay.config.model import StepBase
from clawrelay.envelope import Envelope
from clawrelay.outcome import StepResult
from clawrelay.transports import get_transport, registry, resend_window
from clawrelay.transports.base import AttemptContext
from clawrelay.transports.spec import TransportSpec

CHAIN = ["sessions_send", "nodes_run", "agent_cli", "memory_file", "telegram", "command"]
CARRIERS = {"local", "ssh", "node"}


@pytest.mark.parametrize("name", list(registry._TABLE))
def test_every_registered_spec_is_whole(name: str) -> None:
    spec = registry.spec(name)
    assert spec.name == name == spec.options.transport
    assert issubclass(spec.options, StepBase) and issubclass(spec.options, msgspec.Struct)
    assert spec.options.__struct_config__.frozen and spec.options.__struct_config__.forbid_unknown_fields
    impl = spec.implementation()
    assert inspect.iscoroutinefunction(impl.deliver)
    # a class that states its resend window (the router reads it off injected transports) takes the spec's
    assert getattr(impl, "resend_window", spec.resend_window) == spec.resend_window >= 0
    assert resend_window(name) == spec.resend_window
    assert spec.probe is None or inspect.iscoroutinefunction(spec.probe)
    assert spec.check is None or callable(spec.check)
    assert spec.carriers is None or (spec.host and set(spec.carriers) <= CARRIERS)
    fields = {f.encode_name for f in msgspec.structs.fields(spec.options)}
    assert "via" not in fields or spec.host, "a `via` chooses among the host's carriers"
    if spec.in_routes:
        assert spec.probe is not None, "doctor and status probe every chain step"


def test_the_chain_transports_in_the_order_errors_list_them() -> None:
    assert registry.chain_names() == CHAIN
    assert resend_window("exec") == 0.0  # not a transport: a command, never resent


def test_looking_transports_up_imports_only_their_specs() -> None:
    """Config loading reads every spec it names; no spec pulls in delivering code or asyncio."""
    code = (
        "import json, sys\n"
        "from clawrelay.transports import registry\n"
        "registry.specs()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    loaded = set(json.loads(out))
    impls = {registry.spec(n).impl.partition(":")[0] for n in registry._TABLE}
    heavy = {"asyncio", "yaml", "telegram", "clawrelay.transports.base", "clawrelay.config.routes"}
    assert not loaded & (impls | heavy)


# -- a transport of this test: its options, its class, and one spec ------------------------------


class PigeonStep(StepBase, frozen=True):
    transport: ClassVar[str] = "pigeon"
    loft: str = "roof"


class Pigeon:
    name = "pigeon"

    async def deliver(self, env: Envelope, ctx: AttemptContext) -> StepResult:
        opts = ctx.step.options
        assert isinstance(opts, PigeonStep)
        return StepResult.delivered(f"flown from the {opts.loft}")


SPEC = TransportSpec(options=PigeonStep, impl=f"{__name__}:Pigeon", host=True, resend_window=5.0)


@pytest.fixture
def pigeon() -> Iterator[TransportSpec]:
    registry.register(SPEC)
    yield SPEC
    registry.unregister(SPEC.name)


ROUTES = """\
version: 1
self: me
hosts:
  loft: {local: true, workspace: /tmp}
targets:
  t:
    host: loft
    chain:
      - pigeon: {loft: barn, timeout: 2s}
      - command: {argv: [notify]}
"""


def test_a_transport_is_one_module_and_one_registered_spec(pigeon: TransportSpec) -> None:
    routes, errors = parse_routes(ROUTES, "r.yaml")
    assert errors == [] and routes is not None
    step = routes.plan("t")[0]
    assert (step.transport, step.carriers, step.timeout) == ("pigeon", ("local",), 2.0)
    assert isinstance(step.options, PigeonStep) and step.options.loft == "barn"
    shown = {"timeout": "2s", "loft": "barn", "retries": 1, "on_ambiguous": "continue", "via": ["local"]}
    assert routes.resolved()["targets"]["t"]["chain"][0] == {"pigeon": shown}  # type: ignore[index]
    assert isinstance(get_transport("pigeon"), Pigeon) and resend_window("pigeon") == 5.0
    assert "pigeon" in registry.chain_names()


def test_its_options_and_its_needs_are_checked_like_any_others(pigeon: TransportSpec) -> None:
    _, errors = parse_routes(ROUTES.replace("loft: barn", "lofts: barn"), "r.yaml")
    assert errors == ["r.yaml:9: targets.t.chain[0].pigeon.lofts: unknown key"]
    _, errors = parse_routes(ROUTES.replace("    host: loft\n", ""), "r.yaml")
    assert errors == ["r.yaml:7: targets.t: pigeon needs the target's `host`"]
    _, errors = parse_routes(ROUTES.replace("pigeon: {", "pigeon: {via: [ssh], "), "r.yaml")
    assert errors == ["r.yaml:9: targets.t.chain[0].pigeon.via: unknown key"]  # it did not ask for one


def test_without_it_the_name_is_unknown() -> None:
    _, errors = parse_routes(ROUTES, "r.yaml")
    assert errors == [
        "r.yaml:9: targets.t.chain[0]: unknown transport 'pigeon' (known: " + ", ".join(CHAIN) + ")"
    ]


def test_doctor_asks_its_spec_how_to_probe_it(pigeon: TransportSpec) -> None:
    from clawrelay.probes import Probes

    routes, _ = parse_routes(ROUTES, "r.yaml")
    assert routes is not None
    probes = Probes(routes, carriers=None, timeout=1.0)  # type: ignore[arg-type]  # not reached without a probe
    found = asyncio.run(probes.step("t", routes.plan("t")[0]))
    assert found == "pigeon has no probe: it is tried when a message goes"


# -- a failure's fix is data on the error, not text read back out of its message ---------------


def test_a_carriers_fix_is_the_one_its_raiser_gave() -> None:
    from clawrelay.errors import TransportError
    from clawrelay.probes.fixes import carrier_failure
    from clawrelay.reasons import Reason

    routes, _ = parse_routes(ROUTES.replace("pigeon: {loft: barn, timeout: 2s}", "memory_file"), "r.yaml")
    assert routes is not None
    given = "openclaw approvals allowlist add --node mac /usr/bin/git"
    e = TransportError("the node refused (no approvals mentioned here)", reason=Reason.DENIED, fix=given)
    assert carrier_failure(e, object(), "loft", routes.config).fix == given  # type: ignore[arg-type]
    bare = TransportError(f"mentions {given}, but says no fix", reason=Reason.DENIED)
    assert carrier_failure(bare, object(), "loft", routes.config).fix == (  # type: ignore[arg-type]
        "allow it on the node: openclaw approvals allowlist add --node loft <program>"
    )


# -- and a result says where it put the message, for what follows to read, not to parse back ------


def test_a_memory_entrys_note_is_data_on_its_result(tmp_path: Path) -> None:
    from clawrelay.transports.memory_file import MemoryFile

    text = f"version: 1\nself: me\nhosts: {{h: {{local: true, workspace: '{tmp_path}'}}}}\n"
    routes, errors = parse_routes(text + "targets: {t: {host: h, chain: [memory_file: {}]}}\n", "r.yaml")
    assert routes is not None, errors
    ctx = AttemptContext(routes, "t", routes.plan("t")[0], deadline=time.monotonic() + 10)
    env = Envelope(sender="me", target="t", body="hello")
    first, again = (asyncio.run(MemoryFile().deliver(env, ctx)) for _ in range(2))
    (note,) = (tmp_path / "memory").glob("*.md")
    assert first.where == again.where == str(note)  # no wake step here: the note waits to be read
    assert first.detail == str(note) and again.detail == f"{note} (already there)"
