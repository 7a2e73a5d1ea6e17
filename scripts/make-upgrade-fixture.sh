#!/usr/bin/env bash
# make-upgrade-fixture.sh [COMMIT] [OUT]: rebuilds the data folder that the
# upgrade test (cmd/thiqa/upgrade_test.go) starts from: the folder an
# operator of release COMMIT (default 26fd854, the first release) has after
# a day of use. It builds that commit's thiqa in a temporary detached
# worktree, runs `thiqa init` and `thiqa serve` (SQLite, SoftHSM), and
# through the API and the CLI of that version issues certificates (citizen
# and organisation, keys outside and inside the token; two for one key
# whose CSR it keeps), revokes that key for keyCompromise and another
# certificate as superseded, time-stamps, seals and signs a PDF, enrols a
# mobile ID and logs in with it, fetches the CRLs; then it stops the
# server and copies the folder to OUT (default
# cmd/thiqa/testdata/upgrade-COMMIT) without logs. OUT/upgrade/ holds the
# PDFs, time-stamp tokens and CRLs; its fixture.json names the
# certificates, credentials and PDFs the test checks. The folder's
# softhsm2.conf names its token folder by absolute path: the test points it
# at the copy.
#
# Needs: git, go, softhsm2, openssl, curl, jq, python3. Run from the repository.
# KEEP=1 leaves the temporary folder (its path is printed) for a look.
set -euo pipefail

commit=${1:-26fd854}
repo=$(git rev-parse --show-toplevel)
out=${2:-$repo/cmd/thiqa/testdata/upgrade-$commit}
full=$(git -C "$repo" rev-parse --verify "$commit^{commit}")

work=$(mktemp -d /tmp/thiqa-upgrade-fixture.XXXXXX)
wt="$work/src"
bin="$work/thiqa"
d="$work/data"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  git -C "$repo" worktree remove --force "$wt" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

git -C "$repo" worktree add -q --detach "$wt" "$full"
(cd "$wt" && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -o "$bin" ./cmd/thiqa)

"$bin" init --data "$d" >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin" serve --data "$d" --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$base/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

tok() { "$bin" token --data "$d" --subject "$1" --role "$2" --ttl 1h | tail -n 1; }
officer=$(tok officer-7 registration-officer)
agency=$(tok NTROM-1234567 agency)
citizen=$(tok 12345678 citizen)

csr() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/CN=upgrade" 2>/dev/null; }
citizenSubject='{"givenName":"Aisha","surname":"Al Harthy","commonName":"Aisha Al Harthy","civilNumber":"12345678","country":"OM"}'
orgSubject='{"organizationName":"Ministry of Health","organizationIdentifier":"NTROM-1234567","commonName":"Ministry of Health Seal","country":"OM"}'

# issue PROFILE SUBJECT [csr|hsm|CSR-FILE] -> the JSON answer
issue() {
  local body
  if [ "$3" = hsm ]; then
    body=$(jq -nc --arg p "$1" --argjson s "$2" '{profile:$p, subject:$s, keyInHSM:true}')
  elif [ "$3" = csr ]; then
    body=$(jq -nc --arg p "$1" --argjson s "$2" --arg c "$(csr)" '{profile:$p, subject:$s, csr:$c}')
  else
    body=$(jq -nc --arg p "$1" --argjson s "$2" --rawfile c "$3" '{profile:$p, subject:$s, csr:$c}')
  fi
  curl -sf -H "Authorization: Bearer $officer" -H 'Content-Type: application/json' -d "$body" "$base/api/v1/certificates"
}

mkdir -p "$d/upgrade"
signingCSR=$(issue citizen-signing "$citizenSubject" csr)
# The key that will be reported compromised: its CSR is kept, and a second
# certificate (another profile) certifies the same key.
csr >"$d/upgrade/compromised.csr"
authCSR=$(issue citizen-auth "$citizenSubject" "$d/upgrade/compromised.csr")
sibling=$(issue citizen-signing "$citizenSubject" "$d/upgrade/compromised.csr")
sealCSR=$(issue organisation-seal "$orgSubject" csr)
sealHSM=$(issue organisation-seal "$orgSubject" hsm)
signHSM=$(issue citizen-signing "$citizenSubject" hsm)
authHSM=$(issue citizen-auth "$citizenSubject" hsm)
for j in "$signingCSR" "$authCSR" "$sibling" "$sealCSR" "$sealHSM" "$signHSM" "$authHSM"; do
  [ -n "$(jq -r .serial <<<"$j")" ] || { echo "issuance failed: $j" >&2; exit 1; }
done

# One revoked through the API, one through the CLI.
revokedAPI=$(jq -r .serial <<<"$authCSR")
curl -sf -H "Authorization: Bearer $officer" -H 'Content-Type: application/json' -d '{"reason":"keyCompromise"}' \
  "$base/api/v1/certificates/$revokedAPI/revoke" >/dev/null
revokedCLI=$(jq -r .serial <<<"$sealCSR")
"$bin" revoke --data "$d" --serial "$revokedCLI" --reason superseded >/dev/null 2>&1
# Relying parties fetched the CRLs that name them (the server regenerates
# them triggerDelay, 2 s, after a revocation; the CLI's within pollEvery).
sleep 5
for c in citizen organisation; do
  curl -sf -o "$d/upgrade/$c.crl" "$base/crl/$c.crl"
  openssl crl -inform DER -in "$d/upgrade/$c.crl" -noout -text | grep -qi "$( [ $c = citizen ] && echo "$revokedAPI" || echo "$revokedCLI")" ||
    { echo "the $c CRL does not list its revoked certificate" >&2; exit 1; }
done

# A small PDF.
python3 - "$work/doc.pdf" <<'PY'
import sys
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
text = b"BT /F1 18 Tf 72 760 Td (Thiqa upgrade fixture) Tj ET"
objs[3] = b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"
out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
offs = []
for i, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
x = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(sys.argv[1], "wb").write(out)
PY

sealCred=$(jq -r .credentialID <<<"$sealHSM")
signCred=$(jq -r .credentialID <<<"$signHSM")
authCred=$(jq -r .credentialID <<<"$authHSM")

# Seals: B-LT embeds its revocation data, so it verifies offline after the
# upgrade; B-LTA also carries a document timestamp of the TSA.
curl -sf -H "Authorization: Bearer $agency" -H 'Content-Type: application/pdf' --data-binary @"$work/doc.pdf" \
  -o "$d/upgrade/sealed-blt.pdf" "$base/api/v1/seal?level=B-LT&credential=$sealCred"
curl -sf -H "Authorization: Bearer $agency" -H 'Content-Type: application/pdf' --data-binary @"$work/doc.pdf" \
  -o "$d/upgrade/sealed-blta.pdf" "$base/api/v1/seal?level=B-LTA&credential=$sealCred"

# A citizen's signature with the PIN set through the API.
curl -sf -H "Authorization: Bearer $citizen" -H 'Content-Type: application/json' -d '{"pin":"135790"}' \
  "$base/api/v1/credentials/$signCred/pin" >/dev/null
printf '%s\n' "$citizen" >"$work/citizen.jwt"
PIN=135790 "$bin" sign --url "$base" --token-file "$work/citizen.jwt" --credential "$signCred" --pin-env PIN \
  --level B-LT --in "$work/doc.pdf" --out "$d/upgrade/signed-blt.pdf" >/dev/null 2>&1

# Time-stamps.
for i in 1 2 3; do
  "$bin" timestamp --url "$base/tsa" --in "$work/doc.pdf" --out "$d/upgrade/ts$i.tst" >/dev/null 2>&1
done

# Digital ID: a portal, a mobile ID, one login up to the authorisation code.
"$bin" oidc client add --data "$d" --name "Upgrade portal" --redirect-uri https://portal.example/cb --tls-subject "CN=portal.example,O=Upgrade" >"$work/client.log" 2>&1
clientID=$(grep -o 'oidc-[0-9a-f]*' "$work/client.log" | head -n 1)
printf '135791\n' >"$work/login.pin"
"$bin" oidc mobile enrol --data "$d" --credential "$authCred" --pin-file "$work/login.pin" >/dev/null 2>&1
login=""
page=$(curl -s -X POST "$base/oidc/authorize" --data-urlencode "client_id=$clientID" \
  --data-urlencode "redirect_uri=https://portal.example/cb" -d response_type=code -d scope=openid \
  -d state=upgrade-state -d nonce=upgrade-nonce -d code_challenge_method=S256 \
  -d code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM -d civil_number=12345678 || true)
session=$(grep -o 'name="login" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//' || true)
key=$(grep -o 'name="key" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//' || true)
if [ -n "$session" ] && [ -n "$key" ]; then
  vc=$(curl -sf -H "Authorization: Bearer $citizen" "$base/oidc/mobile/sessions" |
    jq -r --arg s "$session" '.[] | select(.session==$s) | .verificationCode')
  curl -sf -H "Authorization: Bearer $citizen" -H 'Content-Type: application/json' \
    -d "$(jq -nc --arg s "$session" --arg v "$vc" '{session:$s, verificationCode:$v, pin:"135791"}')" \
    "$base/oidc/mobile/approve" >/dev/null
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' -X POST "$base/oidc/authorize/complete" \
    --data-urlencode "login=$session" --data-urlencode "key=$key")
  grep -q 'code=' <<<"$loc" && login=yes
fi
[ "$login" = yes ] || { echo "mobile ID login failed" >&2; exit 1; }

kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

jq -n --arg commit "$full" --arg citizenSigning "$(jq -r .serial <<<"$signingCSR")" \
  --arg revokedAPI "$revokedAPI" --arg revokedCLI "$revokedCLI" --arg sibling "$(jq -r .serial <<<"$sibling")" \
  --arg sealSerial "$(jq -r .serial <<<"$sealHSM")" --arg sealCredential "$sealCred" \
  --arg signSerial "$(jq -r .serial <<<"$signHSM")" --arg signCredential "$signCred" \
  --arg authSerial "$(jq -r .serial <<<"$authHSM")" --arg authCredential "$authCred" --arg clientID "$clientID" \
  '{commit:$commit, citizenSigning:$citizenSigning, revokedKeyCompromise:$revokedAPI, revokedSuperseded:$revokedCLI, compromisedSibling:$sibling,
    sealSerial:$sealSerial, sealCredential:$sealCredential, signSerial:$signSerial, signCredential:$signCredential,
    authSerial:$authSerial, authCredential:$authCredential, oidcClient:$clientID, signingPIN:"135790", loginPIN:"135791",
    pdfs:["upgrade/sealed-blt.pdf","upgrade/sealed-blta.pdf","upgrade/signed-blt.pdf"]}' >"$d/upgrade/fixture.json"
cp "$work/doc.pdf" "$d/upgrade/doc.pdf"

# The fixture: no logs, no lock files (SoftHSM makes them again).
find "$d" \( -name '*.log' -o -name '*.lock' \) -delete
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$d" "$out"
du -sh "$out"
