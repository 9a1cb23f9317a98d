#!/usr/bin/env bash
# Makes sure the services the tests use answer on 127.0.0.1: PostgreSQL (5432, user
# `postgres`, database `test`, trust authentication) and NATS with JetStream (4222). Starts
# them with the machine's own commands when they do not answer; when a service is not
# installed, says how to obtain it (Debian packages `postgresql` and `nats-server`) and stops.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    answers "$port" && return 0
    sleep 0.5
  done
  echo "services: $name does not answer on 127.0.0.1:$port" >&2
  return 1
}

missing() {
  cat >&2 <<EOF
services: $1 is not installed and nothing answers on 127.0.0.1:$2.
  On Debian or Ubuntu, as root:  apt-get install $3
  then run scripts/setup/services.sh again.
EOF
  [ -z "${4:-}" ] || echo "$4" >&2
  exit 1
}

nats_server() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; }
}

if ! answers 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    missing PostgreSQL 5432 postgresql \
      "(Or point the tests at another server: CROSSDOCK_TEST_POSTGRES=postgres://USER@HOST:PORT/DB.)"
  fi
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
fi
wait_for PostgreSQL 5432
command -v psql >/dev/null 2>&1 || missing "psql (the PostgreSQL client)" 5432 postgresql-client
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  cat >&2 <<'EOF'
services: PostgreSQL answers on 127.0.0.1:5432, but not as user postgres on database test
without a password. The tests expect:
  su postgres -c "createdb test"
  and in pg_hba.conf (e.g. /etc/postgresql/*/main/pg_hba.conf), before the other host lines:
    host  all  postgres  127.0.0.1/32  trust
  then: pg_ctlcluster <version> main reload
(Or point the tests at another server: CROSSDOCK_TEST_POSTGRES=postgres://USER@HOST:PORT/DB.)
EOF
  exit 1
fi

if ! answers 4222; then
  server=$(nats_server) || missing nats-server 4222 nats-server
  echo "services: starting NATS"
  start-stop-daemon --start --oknodo --background --exec "$server" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for NATS 4222
echo "services: PostgreSQL and NATS answer"
