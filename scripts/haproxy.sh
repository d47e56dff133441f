#!/usr/bin/env bash
# haproxy of its own in front of several gateway processes, routing only to those whose
# `GET /readyz` answers 200, for tests, the bench and as the example of docs/scaling.md.
#
#   scripts/haproxy.sh start DIR PORT HOST:PORT...
#       writes DIR/haproxy.cfg, starts haproxy on 127.0.0.1:PORT in front of the gateways named,
#       waits until it accepts connections and prints its pid. Installs Debian's haproxy when
#       missing. Its stats socket is DIR/haproxy.sock (`show stat`, `show table gateways`).
#   scripts/haproxy.sh stop DIR
#       stops the haproxy started in DIR, by the pid it wrote there, and waits until it is gone.
#
# Environment: HAPROXY_CHECK_MS (how often each gateway's /readyz is asked, default 1000; a
# gateway is taken out after 2 failed checks, so give the gateways SHUTDOWN_DELAY_MS of at least
# 2 × this plus a margin), HAPROXY_STICK_MS (how long a caller keeps going to the gateway that
# served its last write, default 2000: read-your-writes with a read replica; 0 turns it off).
set -euo pipefail

command=${1:?usage: haproxy.sh start DIR PORT HOST:PORT... | stop DIR}
dir=${2:?the folder haproxy keeps its files in}

case "$command" in
start)
  port=${3:?the port haproxy listens on}
  shift 3
  [ $# -gt 0 ] || { echo "name at least one gateway as HOST:PORT" >&2; exit 2; }
  if ! command -v haproxy >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  fi
  check_ms=${HAPROXY_CHECK_MS:-1000}
  stick_ms=${HAPROXY_STICK_MS:-2000}
  mkdir -p "$dir"
  servers=
  n=0
  for backend in "$@"; do
    n=$((n + 1))
    servers+="  server gateway$n $backend check"$'\n'
  done
  stick=
  if [ "$stick_ms" != 0 ]; then
    # Keyed by a hash of the credential, so that no raw key sits in haproxy's memory.
    stick="  stick-table type binary len 20 size 1m expire ${stick_ms}ms
  acl graphql path /graphql
  acl writes method POST PUT PATCH DELETE
  acl mutation req.body -m sub mutation
  stick store-request req.hdr(x-api-key),sha1 if writes !graphql or graphql mutation
  stick store-request req.hdr(x-assistant-service-key),sha1 if writes !graphql or graphql mutation
  stick match req.hdr(x-api-key),sha1
  stick match req.hdr(x-assistant-service-key),sha1"
  fi
  cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 4000
  pidfile $dir/haproxy.pid
  stats socket $dir/haproxy.sock mode 600 level admin

defaults
  mode http
  option http-buffer-request
  option forwardfor
  option redispatch
  retries 2
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 10s
  timeout check 2s

frontend api
  bind 127.0.0.1:$port
  default_backend gateways

backend gateways
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter ${check_ms}ms fall 2 rise 2
$stick
$servers
CFG
  haproxy -c -q -f "$dir/haproxy.cfg"
  haproxy -D -f "$dir/haproxy.cfg"
  for _ in $(seq 1 100); do
    if [ -s "$dir/haproxy.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      head -1 "$dir/haproxy.pid"
      exit 0
    fi
    sleep 0.1
  done
  echo "haproxy did not start on port $port" >&2
  exit 1
  ;;
stop)
  [ -s "$dir/haproxy.pid" ] || exit 0
  pid=$(head -1 "$dir/haproxy.pid")
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "haproxy $pid did not stop" >&2
  exit 1
  ;;
*)
  echo "unknown command $command: use start or stop" >&2
  exit 2
  ;;
esac
