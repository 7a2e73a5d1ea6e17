#!/usr/bin/env bash
# cluster.sh up|down|status|portal-check|failover-test: a production-shaped
# Thiqa cluster on loopback, for trying and testing the multi-node deployment:
#   - a durable PostgreSQL (fsync and synchronous_commit on: Debian's server
#     binaries, a throwaway cluster in the state folder);
#   - three `thiqa serve` nodes sharing one data folder (configuration, CA
#     and TSA files, one SoftHSM token directory: the stand-in for a network
#     HSM reached through the same PKCS#11 module on every node), each with
#     its own listen port, ready file and log;
#   - HAProxy in front (round robin, health checks on /readyz every 500 ms,
#     a connection refused by a dead node retried on another; a browser
#     kept on one node by a cookie for the portal's pages, whose sessions
#     live in the node's memory).
#
#   up             start it all (state in $CLUSTER_DIR); prints the URL
#   status         nodes, HAProxy's view of them, PostgreSQL
#   down           stop it all and remove the state folder
#   portal-check   one browser (a cookie jar) walks the officer console
#                  through HAProxy: sign-in page, form posts, sign-in, pages,
#                  sign-out; fails when a request reaches a node that does not
#                  hold the browser's session
#   failover-test  up; TSA, seal and issuance load through HAProxy
#                  (`thiqa bench cluster`); SIGKILL node 2 mid-load and
#                  restart it; portal-check before the load, and a browser
#                  of node 2 moved to another node; the checks (failures,
#                  serials, audit records); `thiqa audit verify`; down.
#                  Exit 0 when every check holds.
#
# Environment: THIQA_BIN (default bin/thiqa, built when missing),
# CLUSTER_DIR (default /tmp/thiqa-cluster), PG_BIN (default: the newest
# /usr/lib/postgresql/*/bin), FAILOVER_SECONDS (load duration, default 36),
# KEEP=1 (failover-test leaves the cluster up). Run as root (PostgreSQL then
# runs as the postgres user) or as an ordinary user.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-/tmp/thiqa-cluster}
BIN=${THIQA_BIN:-$here/bin/thiqa}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
NODES=3

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# load_env reads the ports and DSN `up` recorded.
load_env() {
  [ -f "$DIR/cluster.env" ] || die "no cluster in $DIR (run: scripts/cluster.sh up)"
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_node N starts node N and waits for its ready file.
start_node() {
  local n=$1 port_var="NODE$1_PORT"
  rm -f "$DIR/node$n.ready"
  THIQA_DSN=$DSN setsid "$BIN" serve --data "$DIR/data" --addr "127.0.0.1:${!port_var}" \
    --ready-file "$DIR/node$n.ready" >>"$DIR/node$n.log" 2>&1 </dev/null &
  echo $! >"$DIR/node$n.pid"
  disown $! 2>/dev/null || true
  for _ in $(seq 1 600); do
    [ -f "$DIR/node$n.ready" ] && return 0
    alive "$DIR/node$n.pid" || { tail -n 20 "$DIR/node$n.log" >&2; die "node $n exited while starting"; }
    sleep 0.1
  done
  die "node $n did not become ready in 60 s (see $DIR/node$n.log)"
}

# wait_lb waits until HAProxy sees n nodes up.
wait_lb() {
  local want=$1
  for _ in $(seq 1 200); do
    [ "$(lb_up)" -ge "$want" ] && return 0
    sleep 0.1
  done
  die "HAProxy does not see $want nodes up"
}

# lb_up counts the nodes HAProxy reports UP.
lb_up() {
  curl -fsS "http://127.0.0.1:$STATS_PORT/stats;csv" 2>/dev/null | awk -F, '$1=="nodes" && $2 ~ /^node/ && $18 ~ /^UP/ {n++} END {print n+0}'
}

cmd_up() {
  [ -x "$BIN" ] || { log "building $BIN"; (cd "$here" && go build -o "$BIN" ./cmd/thiqa); }
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
  [ -x "$HAPROXY" ] || die "haproxy not found (apt-get install haproxy; scripts/install-deps.sh)"
  if [ -f "$DIR/cluster.env" ]; then die "a cluster is already in $DIR (scripts/cluster.sh down first)"; fi
  mkdir -p "$DIR/pg"
  chmod 755 "$DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/pg"; fi

  PG_PORT=$(free_port)
  log "PostgreSQL (durable) on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -A trust -U postgres >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -w -t 60 \
    -o "-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on -c full_page_writes=on" \
    -l "$DIR/pg/log" start >/dev/null || { cat "$DIR/pg/log" >&2; exit 1; }
  as_pg "$PG_BIN/createdb" -h "$DIR/pg" -p "$PG_PORT" -U postgres thiqa
  DSN="postgres://postgres@127.0.0.1:$PG_PORT/thiqa?sslmode=disable"

  LB_PORT=$(free_port)
  STATS_PORT=$(free_port)
  NODE1_PORT=$(free_port)
  NODE2_PORT=$(free_port)
  NODE3_PORT=$(free_port)
  cat >"$DIR/cluster.env" <<ENV
PG_PORT=$PG_PORT
DSN='$DSN'
LB_PORT=$LB_PORT
STATS_PORT=$STATS_PORT
NODE1_PORT=$NODE1_PORT
NODE2_PORT=$NODE2_PORT
NODE3_PORT=$NODE3_PORT
ENV

  # One data folder, PostgreSQL store, public URL = the load balancer.
  "$BIN" config default | sed \
    -e "s#^listen: .*#listen: 127.0.0.1:$NODE1_PORT#" \
    -e "s#^publicBaseURL: .*#publicBaseURL: http://127.0.0.1:$LB_PORT#" \
    -e 's#^  driver: sqlite#  driver: postgres#' \
    -e 's#^  dsn: thiqa.db#  dsn: ""#' \
    -e 's#^  dsnEnv: ""#  dsnEnv: THIQA_DSN#' \
    -e 's#^  maxOpenConns: 0#  maxOpenConns: 24#' \
    -e 's#^  checkpointEvery: .*#  checkpointEvery: 5s#' \
    -e 's#^  fetchTimeout: 10s#  fetchTimeout: 10s\n  trustedProxies: [127.0.0.1/32]#' >"$DIR/thiqa.yaml"
  grep -q '^  trustedProxies: ' "$DIR/thiqa.yaml" || { echo "cluster.sh: could not set verify.trustedProxies" >&2; exit 1; }
  log "thiqa init (SoftHSM token, CA hierarchy, PostgreSQL schema)"
  THIQA_DSN=$DSN "$BIN" init --data "$DIR/data" --config "$DIR/thiqa.yaml" >"$DIR/init.log" 2>&1 || { cat "$DIR/init.log" >&2; exit 1; }

  for n in $(seq 1 $NODES); do
    start_node "$n"
    port_var="NODE${n}_PORT"
    log "node $n on 127.0.0.1:${!port_var} (pid $(cat "$DIR/node$n.pid"))"
  done

  {
    cat <<CFG
global
  daemon
  pidfile $DIR/haproxy.pid
  maxconn 2000

defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  # The nodes see HAProxy as the TCP peer: the client's address goes in
  # X-Forwarded-For, which the nodes believe from HAProxy's address only
  # (verify.trustedProxies), for rate limits, audit records and logs.
  option forwardfor
  # A connection a dead node refuses is retried on another node: the
  # request was never sent, so no request is sent twice.
  retries 3
  retry-on conn-failure
  option redispatch
  # Never send a request over an idle server connection kept from an
  # earlier one: after a node dies, such a connection fails the request
  # with an empty response that cannot be retried safely (the node might
  # have acted on it); a fresh connection to a dead node is refused and
  # retried elsewhere. So only the requests in flight at the kill fail.
  http-reuse never

frontend thiqa
  bind 127.0.0.1:$LB_PORT
  # The citizen portal and the officer console (/, /my/, /ra/) keep each
  # browser's session in the memory of the node that started it: the
  # browser must stay on that node. Everything else (the APIs, TSA, OCSP,
  # CRLs, certificates, OpenID Connect) keeps its state in PostgreSQL and is
  # balanced request by request, with no cookie added to its answers (OCSP
  # and CRL answers are meant to be cached by shared caches).
  acl portal_page path /
  acl portal_page path_beg /my/ /ra/
  use_backend portal if portal_page
  default_backend nodes

backend nodes
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
CFG
    for n in $(seq 1 $NODES); do
      port_var="NODE${n}_PORT"
      echo "  server node$n 127.0.0.1:${!port_var} check"
    done
    cat <<CFG

backend portal
  # A browser's first page is balanced; HAProxy's cookie then names the node
  # (HttpOnly, SameSite=Lax like the portal's own session cookie; removed
  # from the requests the nodes see). A browser whose node is down or
  # refuses the connection goes to another node (option redispatch), which
  # does not know its session: the person signs in again there. Behind TLS
  # add "secure" to the cookie line.
  balance roundrobin
  cookie thiqa-node insert indirect nocache httponly attr "SameSite=Lax"
CFG
    for n in $(seq 1 $NODES); do
      port_var="NODE${n}_PORT"
      # track: the same node's health as in backend nodes (one check).
      echo "  server node$n 127.0.0.1:${!port_var} cookie node$n track nodes/node$n"
    done
    cat <<CFG

listen stats
  bind 127.0.0.1:$STATS_PORT
  stats enable
  stats uri /stats
CFG
  } >"$DIR/haproxy.cfg"
  "$HAPROXY" -c -q -f "$DIR/haproxy.cfg"
  "$HAPROXY" -f "$DIR/haproxy.cfg"
  wait_lb $NODES
  log "HAProxy on http://127.0.0.1:$LB_PORT (stats http://127.0.0.1:$STATS_PORT/stats)"
  echo "http://127.0.0.1:$LB_PORT"
}

cmd_status() {
  load_env
  local rc=0
  for n in $(seq 1 $NODES); do
    port_var="NODE${n}_PORT"
    if alive "$DIR/node$n.pid"; then
      ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!port_var}/readyz" || true)
      echo "node$n  pid $(cat "$DIR/node$n.pid")  127.0.0.1:${!port_var}  /readyz $ready"
    else
      echo "node$n  DOWN"
      rc=1
    fi
  done
  if alive "$DIR/haproxy.pid"; then
    echo "haproxy http://127.0.0.1:$LB_PORT  nodes up: $(lb_up)/$NODES"
  else
    echo "haproxy DOWN"
    rc=1
  fi
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "postgres 127.0.0.1:$PG_PORT  $DSN"
  else
    echo "postgres DOWN"
    rc=1
  fi
  return $rc
}

# stop_pid FILE SIGNAL stops the process whose pid FILE holds.
stop_pid() {
  local f=$1 sig=${2:-TERM}
  if alive "$f"; then
    kill "-$sig" "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 450); do alive "$f" || break; sleep 0.1; done
  fi
  rm -f "$f"
}

cmd_down() {
  [ -d "$DIR" ] || return 0
  stop_pid "$DIR/haproxy.pid"
  for n in $(seq 1 $NODES); do stop_pid "$DIR/node$n.pid"; done
  if [ -d "$DIR/pg/data" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" stop -m fast >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
}

# web JAR PATH [CURL ARGS…] sends one request through HAProxy as the browser
# whose cookies JAR holds (a form POST when CURL ARGS carry --data…), keeps
# the body in $DIR/web.body and prints the status code.
web() {
  local jar=$1 path=$2
  shift 2
  curl -sS -o "$DIR/web.body" -w '%{http_code}' -b "$jar" -c "$jar" "$@" "http://127.0.0.1:$LB_PORT$path"
}

# web_csrf prints the CSRF token of the last page's first form.
web_csrf() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$DIR/web.body" | head -n 1; }

# web_node prints the node the load balancer's cookie in JAR names.
web_node() { awk '$6 == "thiqa-node" {print $7}' "$1"; }

# web_expect WHAT WANT GOT fails the check when status GOT is not WANT,
# saying whether the node lacked the browser's session.
web_expect() {
  local what=$1 want=$2 got=$3 why=""
  [ "$got" = "$want" ] && return 0
  if grep -q 'Your session has expired' "$DIR/web.body" 2>/dev/null; then
    why=": the node that answered does not know the browser's session (err.session_expired)"
  elif grep -q 'This form is no longer valid' "$DIR/web.body" 2>/dev/null; then
    why=": the node that answered does not know the browser's session (err.csrf)"
  elif grep -q 'id="officer-login"' "$DIR/web.body" 2>/dev/null; then
    why=": the node that answered shows the sign-in page (no session there)"
  fi
  log "portal session check: $what answered $got, want $want$why"
  return 1
}

# officer_token prints a registration officer's development token.
officer_token() {
  THIQA_DSN=$DSN "$BIN" token --data "$DIR/data" --subject officer-cluster --role registration-officer --ttl 10m | tail -n 1
}

# portal_walk JAR TOKEN walks the officer console through HAProxy as one
# browser: the sign-in page, three sign-ins with a wrong token (each answered
# 401 "not accepted": the CSRF token, hence the session, was known), the
# sign-in with TOKEN, four pages that need it, the sign-out. Every request
# after the first depends on the session that the first one started in the
# memory of one node: the walk fails when one reaches another node.
portal_walk() {
  local jar=$1 token=$2 csrf code i
  code=$(web "$jar" "/ra/?lang=en")
  web_expect "GET /ra/ (sign-in page)" 200 "$code" || return 1
  csrf=$(web_csrf)
  [ -n "$csrf" ] || { log "portal session check: the sign-in page has no CSRF token"; return 1; }
  for i in 1 2 3; do
    code=$(web "$jar" /ra/login --data-urlencode "csrf=$csrf" --data-urlencode "token=not-a-token")
    web_expect "POST /ra/login #$i (a wrong token)" 401 "$code" || return 1
  done
  code=$(web "$jar" /ra/login --data-urlencode "csrf=$csrf" --data-urlencode "token=$token")
  web_expect "POST /ra/login (the officer's token)" 303 "$code" || return 1
  for i in 1 2 3 4; do
    code=$(web "$jar" "/ra/?lang=en")
    web_expect "GET /ra/ #$i after the sign-in" 200 "$code" || return 1
    grep -q 'id="lookup"' "$DIR/web.body" || {
      log "portal session check: GET /ra/ #$i after the sign-in shows the sign-in page, not the console: the node that answered does not know the sign-in"
      return 1
    }
  done
  csrf=$(web_csrf)
  code=$(web "$jar" /ra/logout --data-urlencode "csrf=$csrf")
  web_expect "POST /ra/logout" 303 "$code" || return 1
}

# portal_signin JAR TOKEN signs the browser of JAR in to the officer
# console with TOKEN and checks that the console shows.
portal_signin() {
  local jar=$1 token=$2 code
  code=$(web "$jar" "/ra/?lang=en")
  web_expect "GET /ra/ (sign-in page)" 200 "$code" || return 1
  code=$(web "$jar" /ra/login --data-urlencode "csrf=$(web_csrf)" --data-urlencode "token=$token")
  web_expect "POST /ra/login (the officer's token)" 303 "$code" || return 1
  code=$(web "$jar" "/ra/?lang=en")
  web_expect "GET /ra/ after the sign-in" 200 "$code" || return 1
  grep -q 'id="lookup"' "$DIR/web.body" || { log "portal session check: no console after the sign-in"; return 1; }
}

# portal_check runs portal_walk with a fresh cookie jar.
portal_check() {
  local jar="$DIR/portal.jar"
  : >"$jar"
  OFFICER_TOKEN=$(officer_token)
  portal_walk "$jar" "$OFFICER_TOKEN" || return 1
  log "portal sessions OK: 10 requests of one browser through HAProxy (its HAProxy cookie: $(web_node "$jar"))"
}

# crl_check: the nodes serve the same bytes for every CRL, and each CRL
# was signed once in all (one node signs under the CA's lock in the
# database, every node serves what it stored; no revocation runs here).
crl_check() {
  local names name n port_var sums times try
  names=$(grep -h 'CRL published' "$DIR"/node*.log | grep -o '[A-Za-z0-9-]*\.crl' | sort -u)
  [ -n "$names" ] || { log "no node logged 'CRL published'"; return 1; }
  for name in $names; do
    times=$(grep -h 'CRL published' "$DIR"/node*.log | grep -c "[^A-Za-z0-9-]$name")
    [ "$times" = 1 ] || { log "$name was signed $times times by the nodes, want once"; return 1; }
    for try in 1 2 3; do # a new CRL switches on every node at one moment: ask again
      sums=$(for n in $(seq 1 "$NODES"); do
        port_var="NODE${n}_PORT"
        curl -fsS "http://127.0.0.1:${!port_var}/crl/$name" | sha256sum
      done | sort -u | wc -l)
      [ "$sums" = 1 ] && break
      sleep 1
    done
    [ "$sums" = 1 ] || { log "the nodes serve different $name"; return 1; }
  done
  log "CRLs OK: the $NODES nodes serve the same $(echo "$names" | wc -l) CRLs, each signed once"
}

cmd_failover_test() {
  local secs=${FAILOVER_SECONDS:-36}
  cmd_down
  trap '[ "${KEEP:-0}" = 1 ] || cmd_down' EXIT
  cmd_up >/dev/null
  load_env
  portal_check || die "the portal's sessions do not survive the load balancer"
  log "load for ${secs}s through HAProxy; SIGKILL node 2 at ~$((secs / 3))s, restart it ~6s later"
  THIQA_DSN=$DSN "$BIN" bench cluster "http://127.0.0.1:$LB_PORT" --data "$DIR/data" --duration "${secs}s" \
    --tsa 3 --seal 1 --issue 1 >"$DIR/load.out" 2>"$DIR/load.err" &
  local load=$!
  sleep $((secs / 3))
  # A browser signed in on node 2 (its HAProxy cookie names node 2).
  local jar2="$DIR/node2.jar" moved
  printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tthiqa-node\tnode2\n' >"$jar2"
  portal_signin "$jar2" "$OFFICER_TOKEN" || die "a browser cannot sign in on node 2"
  [ "$(web_node "$jar2")" = node2 ] || die "the browser pinned to node 2 was moved to $(web_node "$jar2") while node 2 is up"
  log "SIGKILL node 2 (pid $(cat "$DIR/node2.pid")); HAProxy nodes up: $(lb_up)"
  kill -KILL "$(cat "$DIR/node2.pid")"
  sleep 2
  log "HAProxy nodes up after the kill: $(lb_up)"
  # Node 2's browser goes to another node, which does not know its
  # session: it is shown the sign-in page, signs in again and stays there.
  moved=$(web "$jar2" "/ra/?lang=en")
  web_expect "GET /ra/ of node 2's browser after the kill" 200 "$moved" || die "node 2's browser was not moved to another node"
  grep -q 'id="officer-login"' "$DIR/web.body" || die "node 2's browser, moved to $(web_node "$jar2"), is not asked to sign in again"
  [ "$(web_node "$jar2")" != node2 ] || die "node 2's browser still names node 2 after the kill"
  portal_walk "$jar2" "$OFFICER_TOKEN" || die "node 2's browser cannot use the portal on $(web_node "$jar2")"
  log "portal: node 2's browser moved to $(web_node "$jar2"), signed in again there"
  sleep 3
  log "restarting node 2"
  start_node 2
  wait_lb $NODES
  log "node 2 is back (pid $(cat "$DIR/node2.pid")); HAProxy nodes up: $(lb_up)"
  local rc=0
  wait "$load" || rc=$?
  cat "$DIR/load.out"
  if [ $rc != 0 ]; then
    grep -v '^{' "$DIR/load.err" >&2 || true
    die "the failover checks failed"
  fi
  crl_check || die "the nodes do not serve the same CRLs"
  # Stop the nodes (each writes a last checkpoint), then verify the chain.
  for n in $(seq 1 $NODES); do stop_pid "$DIR/node$n.pid"; done
  THIQA_DSN=$DSN "$BIN" audit verify --data "$DIR/data" | tee "$DIR/verify.out"
  grep -q '^audit checkpoints OK' "$DIR/verify.out" || die "audit verify did not check the checkpoints"
  log "failover test passed"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
portal-check)
  load_env
  portal_check
  ;;
failover-test) cmd_failover_test ;;
*)
  echo "usage: $0 up|down|status|portal-check|failover-test" >&2
  exit 2
  ;;
esac
