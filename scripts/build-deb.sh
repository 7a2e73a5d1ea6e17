#!/usr/bin/env bash
# build-deb.sh [--bin FILE] [--version V] [--out DIR] [--compress xz|gzip|none]: builds
# DIR/thiqa_V_ARCH.deb with dpkg-deb, offline, from a built binary
# (default bin/thiqa, as `make build` stamps it) and deploy/debian/:
#   /usr/bin/thiqa, /lib/systemd/system/thiqa.service,
#   /etc/thiqa/thiqa.yaml (conffile: `thiqa config default --clock kernel`),
#   /usr/share/doc/thiqa/{README.Debian,copyright},
#   /usr/share/thiqa/monitoring/{thiqa-rules.yml,thiqa-grafana.json}.
# Depends gets the binary's shared libraries from dpkg-shlibdeps (dpkg-dev).
# Compression defaults to xz (smallest); tests use none (fastest).
# Prints the path of the package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/thiqa
version=""
out=$PWD
compress=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$version" ] || version=$("$root/scripts/version.sh")
[ -x "$bin" ] || { echo "build-deb: no binary at $bin (run make build)" >&2; exit 1; }
case "$version" in
  [0-9]*) ;;
  *) echo "build-deb: version $version must start with a digit" >&2; exit 2 ;;
esac
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb not found" >&2; exit 1; }
command -v dpkg-shlibdeps >/dev/null || { echo "build-deb: dpkg-shlibdeps not found (apt-get install dpkg-dev)" >&2; exit 1; }
arch=$(dpkg --print-architecture)
src=$root/deploy/debian

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/thiqa" \
  "$pkg/usr/share/doc/thiqa" "$pkg/usr/share/thiqa/monitoring"
install -m 0755 "$bin" "$pkg/usr/bin/thiqa"
install -m 0644 "$src/thiqa.service" "$pkg/lib/systemd/system/thiqa.service"
{
  cat <<'HDR'
# /etc/thiqa/thiqa.yaml: the configuration of the thiqa service. The data
# folder /var/lib/thiqa links thiqa.yaml to this file, so relative paths
# below are relative to /var/lib/thiqa. Check an edit with
#   runuser -u thiqa -- thiqa config check --data /var/lib/thiqa
# then restart the service. See /usr/share/doc/thiqa/README.Debian.
#
HDR
  "$bin" config default --clock kernel
} >"$pkg/etc/thiqa/thiqa.yaml"
chmod 0640 "$pkg/etc/thiqa/thiqa.yaml"
install -m 0644 "$src/README.Debian" "$src/copyright" "$pkg/usr/share/doc/thiqa/"
install -m 0644 "$root/deploy/prometheus/thiqa-rules.yml" "$pkg/usr/share/thiqa/monitoring/thiqa-rules.yml"
install -m 0644 "$root/deploy/grafana/thiqa.json" "$pkg/usr/share/thiqa/monitoring/thiqa-grafana.json"
install -m 0755 "$src/postinst" "$src/prerm" "$src/postrm" "$pkg/DEBIAN/"
echo /etc/thiqa/thiqa.yaml >"$pkg/DEBIAN/conffiles"

# dpkg-shlibdeps reads debian/control of a source package: give it a stub.
mkdir -p "$work/src/debian"
printf 'Source: thiqa\n\nPackage: thiqa\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$pkg/usr/bin/thiqa" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no shared library dependency" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
  "$src/control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/thiqa_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compress" --build "$pkg" "$deb" >/dev/null
echo "$deb"
