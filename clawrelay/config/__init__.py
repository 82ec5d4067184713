"""routes.yaml: the model, its loading with line-accurate errors, and the embedded default."""

from clawrelay.config.loader import check_routes, find_config, load_routes
from clawrelay.config.routes import PlannedStep, Routes

__all__ = ["PlannedStep", "Routes", "check_routes", "find_config", "load_routes"]
