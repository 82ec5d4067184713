#!/usr/bin/env bash
# Install clawrelay and its test dependencies into ./.venv, then run ruff (lint and format), mypy --strict
# and the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k outbox`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "clawrelay needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# compat mode: a plain path entry, so the editable install adds nothing to every interpreter start
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
