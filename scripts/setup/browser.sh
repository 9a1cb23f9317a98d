#!/usr/bin/env bash
# Installs what the dashboard's browser tests need: Debian's `chromium` package and the
# `playwright-core` npm package (into .browser/ at the repository root). Playwright never
# downloads a browser here: the tests drive /usr/bin/chromium. Idempotent and quick when
# everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "Installing nodejs and npm (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -f .browser/node_modules/playwright-core/package.json ]; then
  echo "Installing playwright-core into .browser/"
  mkdir -p .browser
  [ -f .browser/package.json ] || echo '{"name":"crossdock-browser-tests","private":true}' > .browser/package.json
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix .browser --no-audit --no-fund --silent playwright-core@1
fi

chromium --version
node -e "require('$PWD/.browser/node_modules/playwright-core'); console.log('playwright-core ready')"
