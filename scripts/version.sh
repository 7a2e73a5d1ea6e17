#!/usr/bin/env bash
# version.sh: prints the version of the checkout, usable both as the
# binary's version and as a Debian package version (no hyphen, starts with
# a digit):
#   on a tag vX.Y.Z                 X.Y.Z
#   N commits after tag vX.Y.Z      X.Y.Z+gitN.<short commit>
#   no tag yet                      0.0.0+git<commit date YYYYMMDD>.<short commit>
# with ".dirty" appended when the work tree has uncommitted changes.
# Outside a git checkout it prints 0.0.0+unknown.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "0.0.0+unknown"
  exit 0
fi
short=$(git rev-parse --short=12 HEAD)
if desc=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
  # vX.Y.Z-N-gHASH
  tag=${desc%-*-g*}
  rest=${desc#"$tag"-}
  n=${rest%%-*}
  v=${tag#v}
  v=${v//-/\~} # v1.0.0-rc1 sorts before 1.0.0 as 1.0.0~rc1
  [ "$n" = 0 ] || v="$v+git$n.$short"
else
  v="0.0.0+git$(git log -1 --format=%cd --date=format:%Y%m%d).$short"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  v="$v.dirty"
fi
echo "$v"
