#!/usr/bin/env bash
# A pgbouncer of its own in transaction pooling mode, in front of one PostgreSQL server, with a
# `*` entry so that every database on that server is reachable through it.
#
#   scripts/pgbouncer.sh start DIR PORT [SERVER_HOST [SERVER_PORT]]
#       writes DIR/pgbouncer.ini, starts pgbouncer on 127.0.0.1:PORT (as the postgres user when run
#       as root: pgbouncer refuses to run as root), waits until it accepts connections and prints
#       its pid. The server defaults to 127.0.0.1:5432. Installs Debian's pgbouncer when missing.
#       DIR is handed to the postgres user: the folders above it must let that user in.
#   scripts/pgbouncer.sh stop DIR
#       stops the pgbouncer started in DIR, by the pid it wrote there, and waits until it is gone.
#
# Environment: PGBOUNCER_POOL_SIZE (server connections per database and user, default 20),
# PGBOUNCER_USERS (the users it lets in without a password, default "postgres"),
# PGBOUNCER_STATEMENT_TIMEOUT_MS (set on every server connection it opens, default 3000, as the
# gateway wants; see docs/operations.md). Log: DIR/pgbouncer.log.
set -euo pipefail

command=${1:?usage: pgbouncer.sh start DIR PORT [SERVER_HOST [SERVER_PORT]] | stop DIR}
dir=${2:?the folder pgbouncer keeps its files in}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
start)
  port=${3:?the port pgbouncer listens on}
  server_host=${4:-127.0.0.1}
  server_port=${5:-5432}
  if ! command -v pgbouncer >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  fi
  mkdir -p "$dir"
  : >"$dir/userlist.txt"
  for user in ${PGBOUNCER_USERS:-postgres}; do echo "\"$user\" \"\"" >>"$dir/userlist.txt"; done
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$server_host port=$server_port connect_query='set statement_timeout = ${PGBOUNCER_STATEMENT_TIMEOUT_MS:-3000}'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = 2000
server_reset_query =
ignore_startup_parameters = extra_float_digits
admin_users = postgres
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
  as_postgres pgbouncer -d "$dir/pgbouncer.ini"
  for _ in $(seq 1 100); do
    if [ -s "$dir/pgbouncer.pid" ] && pg_isready -q -h 127.0.0.1 -p "$port"; then
      cat "$dir/pgbouncer.pid"
      exit 0
    fi
    sleep 0.1
  done
  echo "pgbouncer did not start on port $port; its log:" >&2
  cat "$dir/pgbouncer.log" >&2 || true
  exit 1
  ;;
stop)
  [ -s "$dir/pgbouncer.pid" ] || exit 0
  pid=$(cat "$dir/pgbouncer.pid")
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "pgbouncer $pid did not stop" >&2
  exit 1
  ;;
*)
  echo "unknown command $command: use start or stop" >&2
  exit 2
  ;;
esac
