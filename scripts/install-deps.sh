#!/usr/bin/env bash
# install-deps.sh: installs, on a Debian machine, the system parts Thiqa's
# build, `make run`, `make deb` and `make test` need, when they are missing:
# SoftHSM2, PostgreSQL, OpenSSL, poppler (pdfsig), qpdf, curl (multipart
# uploads to the verification API), NSS tools
# (certutil), a C compiler for cgo, Chromium with an Arabic-capable font
# (the verification page's browser test; DejaVu also draws visible signatures), node/npm (xml-crypto checks the
# trusted list's signature), promtool (Prometheus rules), dpkg-dev
# (dpkg-shlibdeps for `make deb`), adduser (the package's postinst,
# exercised by the package test), HAProxy and curl (scripts/cluster.sh,
# the cluster failover test). Does nothing when everything is there.
set -euo pipefail

need=()
have_file() { [ -e "$1" ]; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_file /usr/lib/softhsm/libsofthsm2.so && have_cmd softhsm2-util || need+=(softhsm2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
have_cmd openssl || need+=(openssl)
have_cmd pdfsig || need+=(poppler-utils)
have_cmd qpdf || need+=(qpdf)
have_cmd curl || need+=(curl)
have_cmd certutil || need+=(libnss3-tools)
have_cmd gcc || need+=(gcc libc6-dev)
have_cmd python3 || need+=(python3)
have_cmd chromium || need+=(chromium)
{ have_cmd node && have_cmd npm; } || need+=(nodejs npm)
# DejaVu Sans and Serif: Arabic for the page's browser test, and the fonts
# of visible signatures (signing.fonts' default) and of their tests.
{ have_cmd fc-list && [ -n "$(fc-list :lang=ar)" ] && have_file /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
  && have_file /usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf; } || need+=(fonts-dejavu-core)
have_cmd promtool || need+=(prometheus)
have_cmd dpkg-shlibdeps || need+=(dpkg-dev)
have_cmd adduser || need+=(adduser)
{ have_cmd haproxy || [ -x /usr/sbin/haproxy ]; } || need+=(haproxy)
have_cmd curl || need+=(curl)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${need[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  have_cmd sudo || { echo "install-deps: need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
