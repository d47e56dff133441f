#!/usr/bin/env bash
# A PostgreSQL primary and a streaming standby of it, made from nothing in one folder, each on its
# own port on 127.0.0.1, run as the postgres user (PostgreSQL refuses root), for tests of reads
# from a replica. Binaries from PG_BIN (default /usr/lib/postgresql/15/bin).
#
#   scripts/postgres-standby.sh start DIR PRIMARY_PORT STANDBY_PORT
#       initdb DIR/primary (trust authentication on 127.0.0.1, replication included), starts it,
#       copies it with pg_basebackup -R into DIR/standby, starts that as a hot standby streaming
#       from it, and prints the two postmaster pids, primary first. Logs: DIR/{primary,standby}.log.
#       DIR is handed to the postgres user: the folders above it must let that user in.
#   scripts/postgres-standby.sh stop DIR [standby|primary]
#       stops both (standby first, immediate shutdown), or the one named, by the pids in their
#       postmaster.pid files, and waits.
#
# User postgres, no password: postgres://postgres@127.0.0.1:PORT/postgres on either.
set -euo pipefail

command=${1:?usage: postgres-standby.sh start DIR PRIMARY_PORT STANDBY_PORT | stop DIR}
dir=${2:?the folder the two servers keep their files in}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the server in $1 on port $2 and waits until it accepts connections.
start_server() {
  as_postgres "$bin/pg_ctl" -D "$dir/$1" -l "$dir/$1.log" -w -t 60 \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off -c shared_buffers=16MB -c max_connections=60" start >/dev/null
}

case "$command" in
start)
  primary_port=${3:?the port of the primary}
  standby_port=${4:?the port of the standby}
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  as_postgres "$bin/initdb" -D "$dir/primary" -U postgres -A trust --no-sync >"$dir/initdb.log"
  start_server primary "$primary_port"
  as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/standby" -R -X stream -c fast --no-sync
  start_server standby "$standby_port"
  echo "$(head -1 "$dir/primary/postmaster.pid") $(head -1 "$dir/standby/postmaster.pid")"
  ;;
stop)
  for server in ${3:-standby primary}; do
    [ -s "$dir/$server/postmaster.pid" ] || continue
    pid=$(head -1 "$dir/$server/postmaster.pid")
    # SIGQUIT: immediate shutdown. The folder is thrown away, so nothing needs to be written out.
    kill -QUIT "$pid" 2>/dev/null || continue
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  ;;
*)
  echo "unknown command $command: use start or stop" >&2
  exit 2
  ;;
esac
