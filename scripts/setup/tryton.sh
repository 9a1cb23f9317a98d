#!/usr/bin/env bash
# Local Tryton 8.0 server for the crossdock Tryton adapter and its tests.
#
# Usage: scripts/setup/tryton.sh [start|stop|status]
#
#   start (default)  install the pinned Tryton modules into .tryton/venv (skipped
#                    when the pins did not change), build the seeded template
#                    database (skipped when the seed, config or pins did not
#                    change), restore a fresh copy of it, (re)start trytond on
#                    127.0.0.1:$TRYTON_PORT (default 8000), wait until it answers
#                    and write .tryton/env for the tests.
#   stop             stop the server started by this script.
#   status           say whether the server answers.
#
# Everything lives in .tryton/ at the repository root (git-ignored):
#   venv/                  Python virtualenv with requirements.txt + constraints.txt
#   template/              seeded database (crossdock.sqlite), seed.json, seed.sha
#   db/                    the live database the server uses (restored every start)
#   crossdock.password     password of the integration user `crossdock`
#   trytond.conf, trytond.pid, trytond.log, env
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC="$ROOT/scripts/tryton"
STATE="$ROOT/.tryton"
VENV="$STATE/venv"
TEMPLATE="$STATE/template"
LIVE="$STATE/db"
DB=crossdock
LOGIN=crossdock
PORT="${TRYTON_PORT:-8000}"
PYTHON="${PYTHON:-python3}"
PIDFILE="$STATE/trytond.pid"
LOG="$STATE/trytond.log"
CONF="$STATE/trytond.conf"
PASSWORD_FILE="$STATE/crossdock.password"
MODULES=(sale sale_credit_limit sale_complaint sale_price_list account_invoice_stock)

T0=$(date +%s.%N)
PHASE_START=$T0

say() { printf 'tryton: %s\n' "$*"; }
die() { printf 'tryton: error: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
phase_done() {
  say "$1 ($(elapsed "$PHASE_START") s)"
  PHASE_START=$(date +%s.%N)
}
sha() { sha256sum | cut -d' ' -f1; }

# The pid of a running trytond started from this state directory, or nothing.
running_pid() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$PIDFILE")
  [ -n "$pid" ] || return 0
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "trytond .*-c $CONF"; then
    echo "$pid"
  fi
}

stop_server() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    say "stopped trytond (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

rpc_version() {
  curl -s --max-time 2 -H 'Content-Type: application/json' \
    -d '{"id":0,"method":"common.server.version","params":[]}' \
    "http://127.0.0.1:$1/rpc/" 2>/dev/null || true
}

render_config() {
  # $1 = directory holding <db>.sqlite, $2 = output file
  sed -e "s#@DB_PATH@#$1#" -e "s#@LISTEN@#127.0.0.1:$PORT#" \
    "$SRC/trytond.conf.in" >"$2"
}

random_password() {
  "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))'
}

install_venv() {
  local pins
  pins=$( { "$PYTHON" --version 2>&1; cat "$SRC/requirements.txt" "$SRC/constraints.txt"; } | sha)
  if [ -x "$VENV/bin/trytond" ] && [ "$(cat "$VENV/.pins" 2>/dev/null)" = "$pins" ]; then
    phase_done "venv up to date"
  else
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11+ (python3-venv)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create the venv (on Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      -r "$SRC/requirements.txt" -c "$SRC/constraints.txt"
    echo "$pins" >"$VENV/.pins"
    phase_done "installed Tryton into $VENV"
  fi
  PINS_SHA=$pins
}

build_template() {
  [ -s "$PASSWORD_FILE" ] || { random_password >"$PASSWORD_FILE"; chmod 600 "$PASSWORD_FILE"; }
  local seed_sha
  seed_sha=$( { echo "$PINS_SHA"; cat "$SRC/seed.py" "$SRC/trytond.conf.in" "$PASSWORD_FILE";
                printf '%s\n' "${MODULES[@]}"; date +%Y; } | sha)
  if [ -f "$TEMPLATE/$DB.sqlite" ] && [ "$(cat "$TEMPLATE/seed.sha" 2>/dev/null)" = "$seed_sha" ]; then
    phase_done "seeded template up to date"
    return
  fi
  local build="$STATE/build"
  rm -rf "$build" "$TEMPLATE"
  mkdir -p "$build"
  : >"$build/$DB.sqlite"
  render_config "$build" "$build/trytond.conf"
  random_password >"$build/admin.password"
  say "activating modules (about 40 s)"
  TRYTONPASSFILE="$build/admin.password" "$VENV/bin/trytond-admin" -c "$build/trytond.conf" \
    -d "$DB" --all --activate-dependencies -u "${MODULES[@]}" --email admin@localhost \
    >"$build/admin.log" 2>&1 || { tail -n 30 "$build/admin.log" >&2; die "trytond-admin failed (log: $build/admin.log)"; }
  phase_done "database initialised"
  "$VENV/bin/python" "$SRC/seed.py" --config "$build/trytond.conf" --database "$DB" \
    --password-file "$PASSWORD_FILE" --login "$LOGIN" >"$build/seed.json" 2>"$build/seed.log" \
    || { tail -n 30 "$build/seed.log" >&2; die "seed failed (log: $build/seed.log)"; }
  phase_done "database seeded"
  mkdir -p "$TEMPLATE.tmp"
  # The backup API copies a consistent image, WAL content included.
  "$VENV/bin/python" - "$build/$DB.sqlite" "$TEMPLATE.tmp/$DB.sqlite" <<'EOF'
import sqlite3, sys
source, target = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
source.backup(target)
target.execute('PRAGMA journal_mode=DELETE')
target.close()
source.close()
EOF
  cp "$build/seed.json" "$TEMPLATE.tmp/seed.json"
  echo "$seed_sha" >"$TEMPLATE.tmp/seed.sha"
  mv "$TEMPLATE.tmp" "$TEMPLATE"
  rm -rf "$build"
  phase_done "template saved"
}

restore_live() {
  rm -rf "$LIVE"
  mkdir -p "$LIVE"
  cp "$TEMPLATE/$DB.sqlite" "$LIVE/$DB.sqlite"
  phase_done "fresh database restored from the template"
}

start_server() {
  render_config "$LIVE" "$CONF"
  if [ -n "$(rpc_version "$PORT")" ]; then
    die "port $PORT already answers JSON-RPC but not from this checkout's server; set TRYTON_PORT"
  fi
  : >"$LOG"
  setsid "$VENV/bin/trytond" -c "$CONF" -d "$DB" --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null 9>&- &
  local launcher=$!
  for _ in $(seq 1 300); do
    if rpc_version "$PORT" | grep -q '"result": *"8\.0'; then
      phase_done "trytond answers on 127.0.0.1:$PORT (pid $(cat "$PIDFILE" 2>/dev/null || echo "$launcher"))"
      return
    fi
    if ! kill -0 "$launcher" 2>/dev/null && [ -z "$(running_pid)" ]; then
      tail -n 30 "$LOG" >&2
      die "trytond exited during start (log: $LOG)"
    fi
    sleep 0.1
  done
  tail -n 30 "$LOG" >&2
  die "trytond did not answer within 30 s (log: $LOG)"
}

write_env() {
  local seed="$TEMPLATE/seed.json"
  "$VENV/bin/python" - "$seed" "$STATE/env" <<EOF
import json, sys
seed = json.load(open(sys.argv[1]))
lines = {
    'TRYTON_URL': 'http://127.0.0.1:$PORT',
    'TRYTON_DB': '$DB',
    'TRYTON_USER': '$LOGIN',
    'TRYTON_PASSWORD': open('$PASSWORD_FILE').read().strip(),
    'TRYTON_PASSWORD_FILE': '$PASSWORD_FILE',
    'TRYTON_SEED': sys.argv[1],
    'TRYTON_WAREHOUSES': ','.join(
        '%s=%d' % item for item in sorted(seed['warehouses'].items())),
    'TRYTON_TAX': str(seed['tax']),
    'TRYTON_PAYMENT_METHOD': str(seed['payment_method']),
    'TRYTON_PAYMENT_TERM': str(seed['payment_term']),
}
with open(sys.argv[2] + '.tmp', 'w') as out:
    for key, value in lines.items():
        out.write('%s=%s\n' % (key, value))
EOF
  mv "$STATE/env.tmp" "$STATE/env"
  chmod 600 "$STATE/env"
}

cmd="${1:-start}"
mkdir -p "$STATE"
# One invocation at a time per checkout.
exec 9>"$STATE/.lock"
flock 9
T0=$(date +%s.%N)
PHASE_START=$T0

case "$cmd" in
  stop)
    stop_server
    ;;
  status)
    if [ -n "$(rpc_version "$PORT")" ]; then say "up on 127.0.0.1:$PORT"; else say "down"; exit 1; fi
    ;;
  start)
    command -v curl >/dev/null || die "curl is required"
    install_venv
    build_template
    stop_server
    restore_live
    start_server
    write_env
    say "ready in $(elapsed "$T0") s; environment for tests: $STATE/env"
    ;;
  *)
    die "unknown command '$cmd' (start|stop|status)"
    ;;
esac
