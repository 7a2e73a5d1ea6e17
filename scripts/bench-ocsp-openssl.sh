#!/usr/bin/env bash
# bench-ocsp-openssl.sh [CERTS] [DURATION] [CONNS]
#
# Side-by-side OCSP benchmark on the same certificates:
#   1. a fresh data folder (thiqa init, its own SoftHSM token and SQLite);
#   2. CERTS (default 1000) citizen-signing certificates issued in-process;
#   3. `thiqa serve` (responses pre-signed at start) measured with
#      `thiqa bench ocsp` over keep-alive connections, then with a new
#      connection per request;
#   4. `openssl ocsp -index index.txt` on the same certificates (a P-256
#      responder key in a file, for this comparison only; openssl signs every
#      response on demand and speaks HTTP/1.0 without keep-alive), measured
#      with the same load generator, one connection per request, as one
#      process and with -multi 2.
# Requests are SHA-1 CertIDs without nonce (what openssl and most clients
# send). The load generator runs on the same machine as the responders.
set -euo pipefail

certs=${1:-1000}
duration=${2:-10s}
conns=${3:-16}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/thiqa-ocsp-bench.XXXXXX)
pids=()
# stop PID: openssl -multi's parent ignores SIGTERM and respawns its
# children, so it gets SIGKILL first, then its children SIGTERM.
stop() {
  local kids
  kids=$(pgrep -P "$1" || true)
  kill -KILL "$1" 2>/dev/null || true
  [ -n "$kids" ] && kill $kids 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== building thiqa"
(cd "$root" && go build -o "$work/thiqa" ./cmd/thiqa)
thiqa="$work/thiqa"
data="$work/data"
"$thiqa" init --data "$data" >/dev/null 2>"$work/init.log"
echo "== issuing $certs certificates"
"$thiqa" bench ocsp --data "$data" --prepare "$certs" 2>>"$work/init.log"

echo "== thiqa serve"
"$thiqa" serve --data "$data" --addr 127.0.0.1:0 --ready-file "$work/ready" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
addr=$(cat "$work/ready")
# Wait until the pre-signing run has finished.
for _ in $(seq 1 600); do grep -q '"OCSP responses pre-signed","service":"revocation","ca":"citizen"' "$work/serve.log" && break; sleep 0.1; done
"$thiqa" bench ocsp --data "$data" --url "http://$addr/ocsp" --duration 2s --conns "$conns" >/dev/null # warm-up
"$thiqa" bench ocsp --data "$data" --url "http://$addr/ocsp" --duration "$duration" --conns "$conns"
"$thiqa" bench ocsp --data "$data" --url "http://$addr/ocsp" --duration "$duration" --conns "$conns" --conn-per-request
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

echo "== openssl ocsp -index ($(openssl version))"
"$thiqa" bench ocsp --data "$data" --openssl-index "$work/index.txt"
echo 'unique_subject = no' >"$work/index.txt.attr"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/rkey.pem"
openssl req -new -x509 -key "$work/rkey.pem" -out "$work/rcert.pem" -subj "/CN=openssl comparison responder" -days 2 2>/dev/null
for multi in 1 2; do
  port=$(free_port)
  extra=()
  [ "$multi" -gt 1 ] && extra=(-multi "$multi")
  openssl ocsp -index "$work/index.txt" -port "$port" -rsigner "$work/rcert.pem" -rkey "$work/rkey.pem" \
    -CA "$data/ca/citizen.pem" -ndays 1 "${extra[@]}" >"$work/openssl-$multi.log" 2>&1 &
  pids+=($!)
  sleep 1
  echo "-- openssl ocsp, ${multi} process(es)"
  "$thiqa" bench ocsp --data "$data" --url "http://127.0.0.1:$port/ocsp" --duration "$duration" --conns "$conns" --conn-per-request
  stop "${pids[0]}"; pids=()
done
