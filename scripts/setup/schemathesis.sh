#!/usr/bin/env bash
# Installs schemathesis (pinned) into .venv-schemathesis at the repository root, for the API
# contract test (crates/api/tests/schemathesis.rs). Idempotent: a second run only checks the
# pinned version and returns.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-schemathesis"
SCHEMATHESIS=4.32.5

command -v python3 >/dev/null 2>&1 || { echo "schemathesis: python3 is required but not installed" >&2; exit 1; }

if "$venv/bin/python" -c "import sys, importlib.metadata as m; sys.exit(0 if m.version('schemathesis') == '$SCHEMATHESIS' else 1)" 2>/dev/null \
   && [ -x "$venv/bin/schemathesis" ]; then
  echo "schemathesis: $SCHEMATHESIS present in $venv"
  exit 0
fi
echo "schemathesis: installing $SCHEMATHESIS into $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
"$venv/bin/schemathesis" --version
