"""Finding, reading and checking routes.yaml.

Order: `--config`, `$CLAWRELAY_CONFIG`, `./routes.yaml`, the user config dir, and with none of
them the embedded demo (which `--config builtin` also selects, say in a checkout of this
repository, whose example routes.yaml would otherwise be found first).

Every problem becomes a `SourceError` with its line; `load_routes` raises the first as one
`ConfigError` (`file:line: key: what is wrong`), `check_routes` returns them all for
`clawrelay routes check`.
"""

from __future__ import annotations

import os
from pathlib import Path

from clawrelay import paths
from clawrelay.config import default
from clawrelay.config.routes import Routes
from clawrelay.config.schema import SourceError, dotted
from clawrelay.config.yamlsrc import MAX_BYTES, Document, Refused
from clawrelay.errors import ConfigError
from clawrelay.secrets import use_file
from clawrelay.secrets_file import SecretsFile, SecretsFileError

BUILTIN = "builtin"  # --config builtin: the embedded demo, whatever routes.yaml lies around


def find_config(explicit: str | None = None) -> Path | None:
    """The routes file to use, or None for the embedded default."""
    from clawrelay.relay.context import resolve

    for given in (explicit, os.environ.get("CLAWRELAY_CONFIG")):
        if given == BUILTIN:
            return None
        if given:
            path = Path(given).expanduser()
            if not Path(resolve(path)).is_file():
                raise ConfigError(f"{path}: no such config file")
            return path
    for candidate in (Path("routes.yaml"), paths.user_config_file()):
        if Path(resolve(candidate)).is_file():
            return candidate
    return None


def _read(explicit: str | None) -> tuple[str | bytes, str, Path | None]:
    """The routes text (a file's bytes, decoded by `parse_routes`), its source and path.

    At most MAX_BYTES + 1 bytes are read: a larger file is refused by `parse_routes` with the rest.
    """
    path = find_config(explicit)
    if path is None:
        state = paths.state_dir()
        default.demo_workspace(state).mkdir(parents=True, exist_ok=True)
        return default.default_routes_text(state), default.SOURCE, None
    from clawrelay.relay.context import resolve

    try:  # named as given (the messages say `routes.yaml:3`), opened from the command's folder
        with open(resolve(path), "rb") as f:
            return f.read(MAX_BYTES + 1), str(path), Path(resolve(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.__class__.__name__}: {e}") from e


def parse_routes(text: str | bytes, source: str, path: Path | None = None) -> tuple[Routes | None, list[str]]:
    """Parse and check; returns the routes (None when unusable) and every error as a line.

    `text` may be a file's bytes: they must be UTF-8. YAML that cannot be read, or is refused by
    the loader's limits (yamlsrc), is one error: `file:line: what is wrong`.
    """
    import yaml

    from clawrelay.config.model import Config
    from clawrelay.config.refs import check_refs
    from clawrelay.config.schema import validate

    try:
        doc = Document(text)
    except Refused as e:
        return None, [f"{source}:{e.line}: {e.message}"]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f":{mark.line + 1}" if mark else ""
        return None, [f"{source}{at}: not valid YAML: {_one_line(e.problem or e.context)}"]
    except yaml.YAMLError as e:
        return None, [f"{source}: not valid YAML: {_one_line(e)}"]
    if not isinstance(doc.data, dict):
        first = doc.root.start_mark.line + 1 if doc.root is not None else 1
        return None, [f"{source}:{first}: expected a mapping with `version: 1`, `self`, `targets`"]

    config, invalid = validate(Config, doc.data)
    errors = [*doc.errors, *invalid]
    secrets_file = None
    if config is not None:
        errors.extend(check_refs(config))
        for name, gw in config.gateways.items():
            if gw.token is not None:
                loc = ("gateways", name, "token")
                gw.token.where = f"{source}:{doc.line_of(loc)}: {dotted(loc)}"
        if config.secrets is not None:
            try:
                secrets_file = SecretsFile.read(secrets_path(config.secrets, path))
            except SecretsFileError as e:
                errors.append(SourceError(("secrets",), str(e)))

    lines = []
    for err in errors:
        line = err.line or doc.line_of(err.loc)
        key = dotted(err.loc)
        lines.append(f"{source}:{line}: {key + ': ' if key else ''}{err.message}")
    use_file(None if errors else secrets_file)  # `${VAR}`: the environment, then this file
    if errors:
        return None, lines
    assert config is not None  # no errors
    return Routes(config, source, path, secrets_file), []


def secrets_path(value: str, routes_path: Path | None) -> Path:
    """`secrets:` as an absolute path: `~` expanded, a relative one from routes.yaml's folder."""
    given = Path(value).expanduser()
    if not given.is_absolute():
        given = (routes_path.parent if routes_path is not None else Path()) / given
    return Path(os.path.abspath(given))


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def load_routes(explicit: str | None = None) -> Routes:
    text, source, path = _read(explicit)
    routes, errors = parse_routes(text, source, path)
    if routes is None:
        raise ConfigError(
            errors[0] + (f" (and {len(errors) - 1} more: clawrelay routes check)" if len(errors) > 1 else "")
        )
    return routes


def check_routes(explicit: str | None = None) -> tuple[str, Routes | None, list[str]]:
    """The source read, the routes (None when unusable) and every error."""
    text, source, path = _read(explicit)
    return (source, *parse_routes(text, source, path))
