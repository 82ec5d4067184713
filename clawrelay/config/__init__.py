"""routes.yaml: the model, its loading with line-accurate errors, and the embedded default.

Nothing is imported here eagerly: `config.durations` alone must not pull in the model and YAML
(a `clawrelay call` to a URL uses durations and never the model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clawrelay.config.loader import check_routes, find_config, load_routes
    from clawrelay.config.routes import PlannedStep, Routes

__all__ = ["PlannedStep", "Routes", "check_routes", "find_config", "load_routes"]


def __getattr__(name: str) -> Any:
    if name in ("check_routes", "find_config", "load_routes"):
        from clawrelay.config import loader

        return getattr(loader, name)
    if name in ("PlannedStep", "Routes"):
        from clawrelay.config import routes

        return getattr(routes, name)
    raise AttributeError(name)
