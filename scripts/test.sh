#!/usr/bin/env bash
# The whole test suite: prepares everything the tests use (the cargo-nextest runner, services,
# real third-party clients, Tryton, a browser), then runs every test of the workspace. What it
# cannot install itself (PostgreSQL, nats-server) it names, with the Debian package, and stops.
# Usage: scripts/test.sh [extra nextest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# The Tryton server this run starts does not outlive it: a server left running from a
# checkout that is later deleted holds the port, and the next checkout's run refuses it.
trap 'scripts/setup/tryton.sh stop >/dev/null 2>&1 || true' EXIT

# The test runner: cargo-nextest from crates.io, installed once into ~/.cargo/bin.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest (cargo install cargo-nextest --locked)"
  cargo install cargo-nextest --locked
fi

for step in services sfclients tryton browser schemathesis; do
  if [ -x "scripts/setup/$step.sh" ]; then
    "scripts/setup/$step.sh"
  fi
done

cargo nextest run --workspace --profile ci "$@"
cargo test --workspace --doc
