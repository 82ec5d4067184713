#!/usr/bin/env bash
# Node 24 and openclaw from the npm registry, for the integration tests and bench/ (once; ~1-2 min,
# ~850 MB). Idempotent: a matching install is kept. Prints the folder holding `node` and `openclaw`.
#   CLAWRELAY_OPENCLAW_HOME  where (default ${XDG_CACHE_HOME:-~/.cache}/clawrelay-openclaw)
#   OPENCLAW_VERSION (2026.9.6), NODE_VERSION (24.21.0)
set -euo pipefail
ROOT=${CLAWRELAY_OPENCLAW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/clawrelay-openclaw}
OCV=${OPENCLAW_VERSION:-2026.9.6}
NODEV=${NODE_VERSION:-24.21.0}
BIN=$ROOT/bin
command -v npm >/dev/null || { echo "install-openclaw: npm is needed (any Node.js with npm)" >&2; exit 1; }
mkdir -p "$ROOT/node" "$ROOT/oc" "$BIN"

installed() { [ -f "$1/node_modules/$2/package.json" ] && grep -q "\"version\": \"$3\"" "$1/node_modules/$2/package.json"; }

if ! installed "$ROOT/node" node "$NODEV"; then
  (cd "$ROOT/node" && { [ -f package.json ] || echo '{"private": true}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "node@$NODEV" >&2)
fi
NODEBIN=$ROOT/node/node_modules/node/bin
if ! installed "$ROOT/oc" openclaw "$OCV"; then
  (cd "$ROOT/oc" && { [ -f package.json ] || echo '{"private": true}' > package.json; } \
    && PATH=$NODEBIN:$PATH npm install --no-audit --no-fund --loglevel=error "openclaw@$OCV" >&2)
fi
ln -sf "$NODEBIN/node" "$BIN/node"
ln -sf "$ROOT/oc/node_modules/.bin/openclaw" "$BIN/openclaw"
PATH=$BIN:$PATH openclaw --version >&2
echo "$BIN"
