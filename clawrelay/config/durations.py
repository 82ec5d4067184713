"""Durations as people write them in routes.yaml: `500ms`, `5s`, `2m`, `1h`, `3d`, or bare seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


def parse_duration(value: object) -> float:
    """Seconds as a float. Raises ValueError with the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 500ms, 5s, 2m, 1h or 3d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration; use 500ms, 5s, 2m, 1h or 3d")
    if seconds <= 0:
        raise ValueError("a duration must be more than zero")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000)}ms"
