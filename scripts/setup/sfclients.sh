#!/usr/bin/env bash
# Installs the real third-party Salesforce clients the simulator's fidelity tests drive:
#   .sfclients/venv  Python venv with simple-salesforce
#   .sfclients/node  jsforce, salesforce-pubsub-api-client (+ underscore, which its avro-js needs)
# Idempotent: a second run only checks the pinned versions and returns.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.sfclients"
mkdir -p "$dest"

SIMPLE_SALESFORCE=1.12.10
JSFORCE=3.10.16
PUBSUB=5.5.2
UNDERSCORE=1.13.8

# Installs a missing tool from Debian's packages when possible, else stops with a clear message.
need() {
  local tool="$1" package="$2"
  command -v "$tool" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "sfclients: installing $package (for $tool)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  fi
  command -v "$tool" >/dev/null 2>&1 || { echo "sfclients: '$tool' is required but not installed (Debian package $package)" >&2; exit 1; }
}
need python3 python3
need node nodejs
need npm npm
python3 -c "import venv, ensurepip" 2>/dev/null || need_venv=1
if [ "${need_venv:-0}" = 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

# Python: simple-salesforce (pulls requests, PyJWT, cryptography).
venv="$dest/venv"
if ! "$venv/bin/python" -c "import sys, importlib.metadata as m, simple_salesforce; sys.exit(0 if m.version('simple-salesforce') == '$SIMPLE_SALESFORCE' else 1)" 2>/dev/null; then
  echo "sfclients: installing simple-salesforce $SIMPLE_SALESFORCE into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "simple-salesforce==$SIMPLE_SALESFORCE"
fi

# Node: jsforce and the Pub/Sub API client.
node_dir="$dest/node"
installed() {
  node -e "const p=require('$node_dir/node_modules/$1/package.json'); process.exit(p.version==='$2'?0:1)" 2>/dev/null
}
if ! installed jsforce "$JSFORCE" || ! installed salesforce-pubsub-api-client "$PUBSUB" || ! installed underscore "$UNDERSCORE"; then
  echo "sfclients: installing jsforce $JSFORCE, salesforce-pubsub-api-client $PUBSUB into $node_dir"
  mkdir -p "$node_dir"
  if [ ! -f "$node_dir/package.json" ]; then
    (cd "$node_dir" && npm init -y >/dev/null)
  fi
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error \
    "jsforce@$JSFORCE" "salesforce-pubsub-api-client@$PUBSUB" "underscore@$UNDERSCORE")
fi
echo "sfclients: ready in $dest"
