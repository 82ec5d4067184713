"""Run the CLI in a forked child of the test process: the same code in a fresh process, without
paying Python's start-up and clawrelay's imports (~0.3 s) on each of the suite's ~400 runs.

What `subprocess.run([clawrelay, ...])` gives, the child gets too: its own pid, argv, environment,
working directory and stdio (stdin from the input or /dev/null, stdout and stderr to pipes),
Python's default warning filters and signal dispositions, atexit handlers that run at exit, and
the exit status Python would give (SystemExit's code; 1 and a traceback for an uncaught
exception). What it does not get is a fresh interpreter: the libraries the test process imported
stay imported (clawrelay's own modules are imported afresh, so no test's changes to them leak
into a run). So a test of what a command imports (start-up cost) runs the real console script
(`Env.run(..., fork=False)`), as does every test when CLAWRELAY_TEST_FORK=0, and whenever the
test process has threads besides the main one (an in-process fake server): a fork copies only
the calling thread, and a lock another thread held would stay held in the child forever.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

# what every command imports, or most do: loaded once in the test process, shared by every child
PRELOAD = (
    "asyncio",
    "sqlite3",
    "yaml",
    "msgspec",
    "tenacity",
    "websockets.asyncio.client",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "clawrelay.cli",
    "clawrelay.launch",
    "clawrelay.config.loader",
    "clawrelay.router",
    "clawrelay.journal",
    "clawrelay.flush",
    "clawrelay.transports.memory_file",
    "clawrelay.transports.command",
)


def enabled() -> bool:
    return os.environ.get("CLAWRELAY_TEST_FORK", "1") != "0" and hasattr(os, "fork")


def preload() -> None:
    """Import what the children will need, and build every command as the CLI would."""
    import importlib
    import warnings

    with warnings.catch_warnings():  # a library's deprecation notice is not this suite's business
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        from clawrelay import cli

        for command in cli.COMMANDS:
            cli.build_command(command)


def can_fork() -> bool:
    return enabled() and threading.active_count() == 1


def run(
    argv: list[str], *, input: str | None, cwd: str, env: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `argv[0]`'s `clawrelay.cli.main` run with `argv`, as
    subprocess.run would return them; raises subprocess.TimeoutExpired after killing the child."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            _child(argv, cwd, env)
        finally:
            os._exit(70)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    return _parent(pid, in_w, out_r, err_r, (input or "").encode(), argv, timeout)


def _child(argv: list[str], cwd: str, env: dict[str, str]) -> None:
    import atexit
    import random
    import traceback
    import warnings

    gc.freeze()  # the test process's objects: never scanned here (that would copy every page)
    atexit._clear()  # the test process's handlers are not this process's
    random.seed()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(Exception):
        import faulthandler

        faulthandler.disable()
    warnings.resetwarnings()  # Python's defaults, not pytest's recording of them
    for action, category in (
        ("ignore", ResourceWarning),
        ("ignore", ImportWarning),
        ("ignore", PendingDeprecationWarning),
        ("ignore", DeprecationWarning),
    ):
        warnings.filterwarnings(action, category=category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]
    warnings._showwarnmsg = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8"
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.argv = list(argv)
    # clawrelay itself is imported afresh: a test may have changed its modules' state in this
    # process (a secret revealed, a patched function), and a real process starts without that
    for name in [m for m in sys.modules if m == "clawrelay" or m.startswith("clawrelay.")]:
        del sys.modules[name]
    code = 0
    try:
        from clawrelay.launch import main

        sys.exit(main())  # what the console script does (to a relay when one answers)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    _finalize()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code & 0xFF)


def _finalize() -> None:
    """What the interpreter's shutdown does for the command's own objects: close the files and
    SQLite connections it left open (a connection's close checkpoints the journal's WAL into the
    database, as at the end of a real process), then the logging handlers. Only what the child
    made (gc.get_objects() skips what gc.freeze() set aside at the fork): the test process's own
    files and connections are its own."""
    import logging
    import sqlite3

    gc.collect()
    for obj in gc.get_objects():
        if isinstance(obj, sqlite3.Connection | io.IOBase) and obj not in (sys.stdin, sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                obj.close()  # type: ignore[attr-defined]
    with contextlib.suppress(BaseException):
        logging.shutdown()


def _parent(
    pid: int, in_w: int, out_r: int, err_r: int, data: bytes, argv: list[str], timeout: float
) -> tuple[int, str, str]:
    """Feed stdin and drain both pipes at once (a child blocked on a full pipe never exits)."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    sel = selectors.DefaultSelector()
    if data:
        os.set_blocking(in_w, False)
        sel.register(in_w, selectors.EVENT_WRITE)
    else:
        os.close(in_w)
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    end = time.monotonic() + timeout
    sent = 0
    try:
        while sel.get_map():
            left = end - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(argv, timeout)
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == in_w:
                    try:
                        sent += os.write(in_w, data[sent : sent + 65536])
                    except BrokenPipeError:
                        sent = len(data)
                    if sent >= len(data):
                        sel.unregister(in_w)
                        os.close(in_w)
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    chunks[fd].append(chunk)
                else:
                    sel.unregister(fd)
        _, status = os.waitpid(pid, 0)
    finally:
        if in_w in sel.get_map():  # a timeout while stdin was still being fed
            os.close(in_w)
        sel.close()
        for fd in (out_r, err_r):
            os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    return code, _text(chunks[out_r]), _text(chunks[err_r])


def _text(chunks: list[bytes]) -> str:
    # as subprocess.run(text=True) decodes: the locale's encoding, universal newlines
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
