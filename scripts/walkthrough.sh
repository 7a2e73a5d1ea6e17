#!/usr/bin/env bash
# The README's quick start, as one script that runs in order: a scratch
# folder, a server, a token per role, a certificate from a CSR, credentials
# whose keys live on the token, a seal, a PIN and two signatures (one step,
# and the CSC two-step), a digital-ID login for a portal, a time-stamp, OCSP
# and a CRL, and verification last. CI runs it against a fresh folder
# (cmd/thiqa TestWalkthrough), so the README's commands cannot rot.
#
#   scripts/walkthrough.sh [SCRATCH]      default: a new folder under /tmp
#
# Environment: THIQA (the binary, default bin/thiqa; `make build` makes it),
# PORT (default 8080). Needs curl, openssl, sed and basenc (coreutils).
# Every response is kept in SCRATCH under a name the steps below give it.
set -euo pipefail
export LC_ALL=C

THIQA=$(realpath "${THIQA:-bin/thiqa}")
PORT=${PORT:-8080}
WORK=${1:-$(mktemp -d /tmp/thiqa-walkthrough.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
echo "walkthrough in $WORK"

# call STATUS FILE CURL-ARGS...: one HTTP call; the body goes to FILE, and
# any status but STATUS stops the walk-through.
call() {
  local want=$1 out=$2 got
  shift 2
  got=$(curl -sS -o "$out" -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then
    echo "want HTTP $want, got $got from ${*: -1}: $(head -c 400 "$out")" >&2
    return 1
  fi
}
# field NAME FILE: the string value of the first JSON member NAME in FILE.
field() { sed -n "s/\"$1\": *\"/$(printf '\001')/; s/.*$(printf '\001')\([^\"]*\)\".*/\1/p" "$2" | head -n 1; }
# b64url: base64url without padding, as JOSE and PKCE want it.
b64url() { basenc --base64url -w0 | tr -d '='; }

# --- 1. A data folder and a server -------------------------------------------
# The default configuration listens on 127.0.0.1:8080, which certificates
# (OCSP, CRL URLs) and the digital ID's issuer name as publicBaseURL.
"$THIQA" config default | sed "s/127\.0\.0\.1:8080/127.0.0.1:$PORT/g" > thiqa.yaml
"$THIQA" init --data data --config thiqa.yaml > init.txt 2> init.log
"$THIQA" serve --data data --ready-file ready 2> serve.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s ready ] && break; sleep 0.1; done
BASE=http://127.0.0.1:$PORT
call 200 healthz.json "$BASE/healthz"
call 200 readyz.json "$BASE/readyz"
call 200 openapi.json "$BASE/openapi.json"         # the API reference (OpenAPI 3.1)

# --- 2. A token per role (development tokens: `thiqa token`) -----------------
OFFICER=$("$THIQA" token --data data --subject officer-1 --role registration-officer | tail -n 1)
AGENCY=$("$THIQA" token --data data --subject NTROM-1234567 --role agency | tail -n 1)
CITIZEN=$("$THIQA" token --data data --subject 12345678 --role citizen | tail -n 1)
OPERATOR=$("$THIQA" token --data data --subject operator-1 --role operator | tail -n 1)
call 200 whoami.json -H "Authorization: Bearer $CITIZEN" "$BASE/api/v1/whoami"
call 401 unauthenticated.json "$BASE/api/v1/whoami"   # a problem body (RFC 9457)

# --- 3. A sample PDF (any PDF will do) ---------------------------------------
# make_pdf FILE: a one-page PDF with a correct cross-reference table.
make_pdf() {
  local objs=(
    '<</Type/Catalog/Pages 2 0 R>>'
    '<</Type/Pages/Kids[3 0 R]/Count 1>>'
    '<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</Font<</F1 5 0 R>>>>/Contents 4 0 R>>'
    $'<</Length 42>>\nstream\nBT /F1 24 Tf 72 760 Td (Hello Thiqa) Tj ET\nendstream'
    '<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>'
  )
  local pdf=$'%PDF-1.7\n' xref i
  local offsets=()
  for i in "${!objs[@]}"; do
    offsets+=("${#pdf}")
    pdf+="$((i + 1)) 0 obj"$'\n'"${objs[$i]}"$'\nendobj\n'
  done
  xref=${#pdf}
  {
    printf '%s' "$pdf"
    printf 'xref\n0 %d\n0000000000 65535 f\r\n' $((${#objs[@]} + 1))
    printf '%010d 00000 n\r\n' "${offsets[@]}"
    printf 'trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n' $((${#objs[@]} + 1)) "$xref"
  } > "$1"
}
make_pdf doc.pdf

# --- 4. A certificate from a CSR (registration officer) ----------------------
# The subject's fields depend on the profile; the key stays with its holder.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout aisha.key \
  -subj "/CN=Aisha Al Balushi" -out aisha.csr 2> /dev/null
cat > subject.json <<'JSON'
{"givenName": "Aisha", "surname": "Al Balushi", "commonName": "Aisha Al Balushi",
 "civilNumber": "87654321", "country": "OM", "email": "aisha@example.om"}
JSON
printf '{"profile": "citizen-auth", "subject": %s, "csr": "%s"}\n' \
  "$(cat subject.json)" "$(awk '{printf "%s\\n", $0}' aisha.csr)" > issue-request-csr.json
call 201 issue-created.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  --data-binary @issue-request-csr.json "$BASE/api/v1/certificates"
SERIAL=$(field serial issue-created.json)
call 200 certificate.json -H "Authorization: Bearer $OFFICER" "$BASE/api/v1/certificates/$SERIAL"
# The same in process, for an operator: thiqa issue --data data --profile citizen-auth --csr aisha.csr --subject-file subject.json

# A request with bad fields hears about every one of them at once:
call 400 issue-bad-subject.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  -d '{"profile": "citizen-signing", "subject": {"commonName": "Aisha", "country": "om", "civilNumber": "12A"}, "keyInHSM": true}' \
  "$BASE/api/v1/certificates"
call 403 forbidden.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @issue-request-csr.json "$BASE/api/v1/certificates"   # citizens do not issue

# --- 5. Credentials whose keys live on the token (keyInHSM) -------------------
# keyInHSM: the key is generated on the token; the answer names its credentialID.
cat > issue-request-keyinhsm.json <<'JSON'
{"profile": "citizen-signing", "keyInHSM": true, "subject": {"givenName": "Salim", "surname": "Al Harthy",
 "commonName": "Salim Al Harthy", "civilNumber": "12345678", "country": "OM"}}
JSON
call 201 citizen-signing.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  --data-binary @issue-request-keyinhsm.json "$BASE/api/v1/certificates"
SIGN_CRED=$(field credentialID citizen-signing.json)
call 201 citizen-auth.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  -d '{"profile": "citizen-auth", "keyInHSM": true, "subject": {"givenName": "Salim", "surname": "Al Harthy", "commonName": "Salim Al Harthy", "civilNumber": "12345678", "country": "OM"}}' \
  "$BASE/api/v1/certificates"
AUTH_CRED=$(field credentialID citizen-auth.json)
call 201 organisation-seal.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  -d '{"profile": "organisation-seal", "keyInHSM": true, "subject": {"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health seal", "country": "OM"}}' \
  "$BASE/api/v1/certificates"
SEAL_CRED=$(field credentialID organisation-seal.json)
echo "credentials: signing $SIGN_CRED, login $AUTH_CRED, seal $SEAL_CRED"

# --- 6. An agency seals ------------------------------------------------------
call 200 sealed.pdf -H "Authorization: Bearer $AGENCY" -H 'Content-Type: application/pdf' \
  --data-binary @doc.pdf "$BASE/api/v1/seal?level=B-T&credential=$SEAL_CRED"
cp doc.pdf second.pdf
call 200 seal-batch.json -H "Authorization: Bearer $AGENCY" -F doc=@doc.pdf -F doc=@second.pdf \
  "$BASE/api/v1/seal/batch?level=B-B&credential=$SEAL_CRED"

# --- 7. A citizen sets a PIN and signs ----------------------------------------
PIN=482916
printf '{"pin": "%s"}\n' "$PIN" > pin-request.json
call 201 pin-set.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @pin-request.json "$BASE/api/v1/credentials/$SIGN_CRED/pin"
call 200 signed.pdf -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/pdf' -H "X-Thiqa-PIN: $PIN" \
  --data-binary @doc.pdf "$BASE/api/v1/sign?level=B-T&credential=$SIGN_CRED"
# The same through the CLI: printf %s "$PIN" > pin.txt; echo "$CITIZEN" > citizen.jwt
#   PIN=$PIN bin/thiqa sign --url $BASE --token-file citizen.jwt --credential $SIGN_CRED --pin-env PIN --level B-T --in doc.pdf --out signed.pdf

# --- 8. Remote signing with the CSC API (two steps) ---------------------------
call 200 csc-info.json -H 'Content-Type: application/json' -d '{}' "$BASE/csc/v2/info"
echo '{"credentialInfo": true, "certInfo": true}' > csc-list-request.json
call 200 csc-list.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @csc-list-request.json "$BASE/csc/v2/credentials/list"
printf '{"credentialID": "%s", "certInfo": true}\n' "$SIGN_CRED" > csc-credential-info-request.json
call 200 csc-credential-info.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @csc-credential-info-request.json "$BASE/csc/v2/credentials/info"
# Step 1: the hash of this document's signature; nothing is kept on the server.
call 200 sign-prepare.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/pdf' \
  --data-binary @doc.pdf "$BASE/api/v1/sign/prepare?level=B-T&credential=$SIGN_CRED"
HASH=$(field hash sign-prepare.json)
SIGNING_TIME=$(field signingTime sign-prepare.json)
PLACEHOLDER=$(sed -n 's/.*"placeholder": *\([0-9]*\).*/\1/p' sign-prepare.json)
# The citizen authorises exactly that hash with the PIN: a SAD.
printf '{"credentialID": "%s", "numSignatures": 1, "hashes": ["%s"], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": [{"id": "PIN", "value": "%s"}]}\n' \
  "$SIGN_CRED" "$HASH" "$PIN" > csc-authorize-request.json
call 200 csc-authorize.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @csc-authorize-request.json "$BASE/csc/v2/credentials/authorize"
SAD=$(field SAD csc-authorize.json)
# Step 2: the same PDF and the SAD; signingTime and placeholder go back unchanged.
call 200 signed-two-step.pdf -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/pdf' -H "X-Thiqa-SAD: $SAD" \
  --data-binary @doc.pdf "$BASE/api/v1/sign/complete?level=B-T&credential=$SIGN_CRED&signingTime=$(printf %s "$SIGNING_TIME" | sed 's/+/%2B/g')&placeholder=$PLACEHOLDER"
# Or sign any hash: a SAD for it, then signatures/signHash (ECDSA P-256 with SHA-256).
DIGEST=$(printf 'any document' | openssl dgst -sha256 -binary | base64)
printf '{"credentialID": "%s", "numSignatures": 1, "hashes": ["%s"], "authData": [{"id": "PIN", "value": "%s"}]}\n' \
  "$SIGN_CRED" "$DIGEST" "$PIN" > authorize-hash.json
call 200 sad.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @authorize-hash.json "$BASE/csc/v2/credentials/authorize"
printf '{"credentialID": "%s", "SAD": "%s", "hashes": ["%s"], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}\n' \
  "$SIGN_CRED" "$(field SAD sad.json)" "$DIGEST" > csc-signhash-request.json
call 200 csc-signhash.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @csc-signhash-request.json "$BASE/csc/v2/signatures/signHash"
# A SAD signs once: the second try is a CSC error body.
call 400 csc-error.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @csc-signhash-request.json "$BASE/csc/v2/signatures/signHash"

# --- 9. A portal logs the citizen in with the digital ID ----------------------
# The portal's key pair (Ed25519) and its public JWK set, for private_key_jwt.
openssl genpkey -algorithm ed25519 -out portal.key
X=$(openssl pkey -in portal.key -pubout -outform DER | tail -c 32 | b64url)
printf '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "%s", "kid": "portal-1", "use": "sig", "alg": "EdDSA"}]}\n' "$X" > portal.jwks.json
# An operator registers the portal (or: thiqa oidc client add --data data --name … --redirect-uri … --jwks-file portal.jwks.json).
printf '{"name": "Tax portal", "redirectURIs": ["https://tax.example/cb"], "jwks": %s}\n' "$(cat portal.jwks.json)" > client-request.json
call 201 client.json -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' \
  --data-binary @client-request.json "$BASE/api/v1/oidc/clients"
CLIENT=$(field client_id client.json)
# The citizen's mobile ID: the citizen-auth key on the token, with a login PIN.
printf '%s' 204816 > login-pin.txt
"$THIQA" oidc mobile enrol --data data --credential "$AUTH_CRED" --pin-file login-pin.txt
call 200 oidc-discovery.json "$BASE/.well-known/openid-configuration"
call 200 oidc-jwks.json "$BASE/oidc/jwks"
TOKEN_ENDPOINT=$(field token_endpoint oidc-discovery.json)
# The browser: the portal sends it to /oidc/authorize (code flow + PKCE); the citizen types the civil number.
VERIFIER=$(openssl rand -hex 32)
CHALLENGE=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary | b64url)
call 200 login.html "$BASE/oidc/authorize" --data-urlencode "client_id=$CLIENT" \
  --data-urlencode redirect_uri=https://tax.example/cb -d response_type=code --data-urlencode 'scope=openid profile' \
  -d state=s1 -d nonce=n1 -d "code_challenge=$CHALLENGE" -d code_challenge_method=S256 -d civil_number=12345678
LOGIN=$(sed -n 's/.*name="login" value="\([^"]*\)".*/\1/p' login.html)
KEY=$(sed -n 's/.*name="key" value="\([^"]*\)".*/\1/p' login.html)
# The phone (signed in as the citizen) lists the pending login and approves it with the PIN.
call 200 mobile-sessions.json -H "Authorization: Bearer $CITIZEN" "$BASE/oidc/mobile/sessions"
printf '{"session": "%s", "verificationCode": "%s", "pin": "204816"}\n' \
  "$(field session mobile-sessions.json)" "$(field verificationCode mobile-sessions.json)" > mobile-approve-request.json
call 200 mobile-approve.json -H "Authorization: Bearer $CITIZEN" -H 'Content-Type: application/json' \
  --data-binary @mobile-approve-request.json "$BASE/oidc/mobile/approve"
# The browser finishes and is sent back to the portal with a code.
REDIRECT=$(curl -sS -o /dev/null -w '%{redirect_url}' -d "login=$LOGIN" -d "key=$KEY" "$BASE/oidc/authorize/complete")
CODE=$(printf %s "$REDIRECT" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
# The portal redeems the code, authenticated by a JWT signed with its key
# (private_key_jwt, RFC 7523): a new one, with a new jti, for every call.
client_assertion() {
  local now claims
  now=$(date +%s)
  claims=$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
    "$CLIENT" "$CLIENT" "$TOKEN_ENDPOINT" "$now" $((now + 60)) "$(openssl rand -hex 12)")
  printf '%s.%s' "$(printf '{"alg":"EdDSA","kid":"portal-1","typ":"JWT"}' | b64url)" "$(printf %s "$claims" | b64url)" > assertion.txt
  printf '%s.%s' "$(cat assertion.txt)" "$(openssl pkeyutl -sign -inkey portal.key -rawin -in assertion.txt | b64url)"
}
redeem() {
  curl -sS "$@" "$BASE/oidc/token" -d grant_type=authorization_code -d "code=$CODE" \
    --data-urlencode redirect_uri=https://tax.example/cb -d "code_verifier=$VERIFIER" \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    -d "client_assertion=$(client_assertion)"
}
[ "$(redeem -o oidc-token.json -w '%{http_code}')" = 200 ]
call 200 oidc-userinfo.json -H "Authorization: Bearer $(field access_token oidc-token.json)" "$BASE/oidc/userinfo"
# A code is redeemed once: an OAuth error body.
[ "$(redeem -o oidc-token-error.json -w '%{http_code}')" = 400 ]

# --- 10. Time-stamps, certificate status -------------------------------------
"$THIQA" timestamp --url "$BASE/tsa" --in doc.pdf --out doc.tst
openssl ts -reply -in doc.tst -token_in -text > doc.tst.txt 2> /dev/null
field certificate issue-created.json | sed 's/\\n/\n/g' > aisha.pem
openssl ocsp -issuer data/ca/citizen.pem -CAfile data/ca/root.pem -cert aisha.pem -url "$BASE/ocsp" > ocsp-good.txt 2>&1
grep -q 'aisha.pem: good' ocsp-good.txt
echo '{"reason": "superseded"}' > revoke-request.json
call 200 revoke-ok.json -H "Authorization: Bearer $OFFICER" -H 'Content-Type: application/json' \
  --data-binary @revoke-request.json "$BASE/api/v1/certificates/$SERIAL/revoke"
openssl ocsp -issuer data/ca/citizen.pem -CAfile data/ca/root.pem -cert aisha.pem -url "$BASE/ocsp" > ocsp-revoked.txt 2>&1
grep -q 'aisha.pem: revoked' ocsp-revoked.txt
call 200 citizen.crl "$BASE/crl/citizen.crl"
openssl crl -inform DER -in citizen.crl -noout -text > citizen.crl.txt

# --- 11. Verify, last ---------------------------------------------------------
"$THIQA" verify signed.pdf --data data | tee verify.txt     # TOTAL-PASSED, validated now
grep -q TOTAL-PASSED verify.txt
call 200 verify-report.json -F file=@sealed.pdf "$BASE/api/v1/verify"
grep -q '"indication": *"TOTAL-PASSED"' verify-report.json
# --- 12. The people's pages ------------------------------------------------------
# The same tasks without curl: open these in a browser (Arabic by default,
# English with ?lang=en). The console takes $OFFICER as its sign-in token;
# /my/approve (the phone side of mobile ID) takes $CITIZEN.
call 200 front.html -H 'Accept-Language: en' "$BASE/"
grep -q 'href="/my/"' front.html && grep -q 'href="/ra/"' front.html
call 200 ra.html "$BASE/ra/"
grep -q 'name="csrf"' ra.html
echo "front page $BASE/  citizen portal $BASE/my/  phone $BASE/my/approve  officer console $BASE/ra/"
echo "walkthrough done: every step answered as expected"
