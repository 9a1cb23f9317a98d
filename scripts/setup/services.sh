#!/usr/bin/env bash
# Makes sure the services the tests use answer on 127.0.0.1: PostgreSQL (5432) and
# NATS with JetStream (4222). Starts them with the machine's own commands when they do not.
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

if ! answers 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_for PostgreSQL 5432
psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null

if ! answers 4222; then
  echo "services: starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for NATS 4222
echo "services: PostgreSQL and NATS answer"
