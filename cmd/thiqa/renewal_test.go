package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/signing"
)

// TestRenewalOnSQLite and TestRenewalOnPostgres: a citizen's remote-signing
// credential is renewed with the same key, then re-keyed on the token, and
// signs after each with its new certificate under the same PIN, keeping
// its credential ID; the replaced certificates are revoked superseded and
// the replaced key destroyed. A CSR certificate is re-keyed with a new CSR.
// Every bad request (another citizen's certificate, a compromised key, a
// re-key CSR with the old key, a key past its crypto-period, a certificate
// renewed already, bad listing parameters) is a clear 4xx, audited, and
// changes nothing.
func TestRenewalOnSQLite(t *testing.T)   { runRenewalE2E(t, false) }
func TestRenewalOnPostgres(t *testing.T) { runRenewalE2E(t, true) }

func runRenewalE2E(t *testing.T, postgres bool) {
	f, db := newPKIFixture(t, postgres, func(y string) string {
		// citizen-auth keys may be certified for one validity period only:
		// renewing one with the same key is refused.
		return strings.Replace(y, "    pdsLanguage: \"\"\n", "    pdsLanguage: \"\"\n    cryptoPeriods:\n      citizen-auth: 730d\n", 1)
	})
	const pinValue = "482916"
	citizen := f.citizenToken(t, "12345678")
	other := f.citizenToken(t, "23456789")
	c := f.client(nil)
	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	certs := func() int { return count("SELECT count(*) FROM certificates WHERE state <> 'abandoned'") }
	renew := func(serial, body, bearer string) (int, string, ca.RenewResponse) {
		t.Helper()
		st, out, _ := f.do(t, c, http.MethodPost, "/api/v1/certificates/"+serial+"/renew", "application/json", body, bearer)
		var rr ca.RenewResponse
		if st == http.StatusCreated {
			if err := json.Unmarshal([]byte(out), &rr); err != nil {
				t.Fatalf("renew answer %s: %v", out, err)
			}
		}
		return st, out, rr
	}
	refused := func(what string, st int, body string, wantStatus int, wantType string) {
		t.Helper()
		if st != wantStatus || !strings.Contains(body, wantType) {
			t.Fatalf("%s: %d %s, want %d %s", what, st, body, wantStatus, wantType)
		}
	}
	pdf := string(samplePDF(t, 8<<10))
	sign := func(cred string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.base+"/api/v1/sign?level=B-B&credential="+cred, strings.NewReader(pdf))
		req.Header.Set("Authorization", "Bearer "+citizen)
		req.Header.Set("Content-Type", "application/pdf")
		req.Header.Set(signing.PINHeader, pinValue)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("signing with %s: %d %s", cred, resp.StatusCode, buf.String())
		}
		return buf.Bytes()
	}
	der := func(p string) []byte {
		blk, _ := pem.Decode([]byte(p))
		return blk.Bytes
	}
	// carries: the PDF's signature (hex in /Contents) holds the certificate.
	carries := func(signed []byte, certPEM string) bool {
		return bytes.Contains(bytes.ToLower(signed), []byte(hex.EncodeToString(der(certPEM))))
	}
	revokedReason := func(serial string) int {
		t.Helper()
		var reason int
		if err := db.QueryRow("SELECT reason FROM revocations WHERE serial = '" + serial + "'").Scan(&reason); err != nil {
			t.Fatalf("revocation of %s: %v", serial, err)
		}
		return reason
	}

	// A remote-signing credential with its PIN signs.
	first := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), KeyInHSM: true})
	cred := first.CredentialID
	// Its owner sees it at once, before any use, without a PIN yet.
	if st, body, _ := f.do(t, c, http.MethodGet, "/api/v1/credentials?owner=self", "", "", citizen); st != http.StatusOK ||
		!strings.Contains(body, `"credentialID":"`+cred+`"`) || !strings.Contains(body, `"not-set"`) {
		t.Fatalf("a new credential is not listed for its owner: %d %s", st, body)
	}
	if st, body, _ := f.do(t, c, http.MethodPost, "/api/v1/credentials/"+cred+"/pin", "application/json", `{"pin":"`+pinValue+`"}`, citizen); st != http.StatusCreated {
		t.Fatalf("setting the PIN: %d %s", st, body)
	}
	if signed := sign(cred); !carries(signed, first.Certificate) {
		t.Fatal("the first signature does not carry the first certificate")
	}

	// Another citizen may not renew it; nothing changes.
	before := certs()
	st, body, _ := renew(first.Serial, `{}`, other)
	refused("another citizen renews", st, body, http.StatusForbidden, "urn:thiqa:problem:not-yours")
	if certs() != before {
		t.Fatal("a refused renewal stored a certificate")
	}

	// The citizen renews with the same key: same credential, new certificate.
	st, body, renewed := renew(first.Serial, `{}`, citizen)
	if st != http.StatusCreated || renewed.Replaces != first.Serial || renewed.CredentialID != cred || renewed.Serial == first.Serial {
		t.Fatalf("renewal: %d %s", st, body)
	}
	oldCert, _ := x509.ParseCertificate(der(first.Certificate))
	newCert, _ := x509.ParseCertificate(der(renewed.Certificate))
	if !bytes.Equal(oldCert.RawSubjectPublicKeyInfo, newCert.RawSubjectPublicKeyInfo) || oldCert.Subject.String() != newCert.Subject.String() {
		t.Fatal("the renewal changed the key or the subject")
	}
	if revokedReason(first.Serial) != 4 {
		t.Fatal("the replaced certificate is not revoked superseded")
	}
	if signed := sign(cred); !carries(signed, renewed.Certificate) {
		t.Fatal("after renewal, the signature does not carry the renewed certificate")
	}
	// A certificate is renewed once.
	st, body, _ = renew(first.Serial, `{}`, f.officer)
	refused("renewing twice", st, body, http.StatusConflict, renewed.Serial)

	// Re-key on the token: a new key, the same credential and PIN; the old key is destroyed.
	st, body, rekeyed := renew(renewed.Serial, `{"rekey": true}`, citizen)
	if st != http.StatusCreated || rekeyed.Replaces != renewed.Serial || rekeyed.CredentialID != cred {
		t.Fatalf("re-key: %d %s", st, body)
	}
	rkCert, _ := x509.ParseCertificate(der(rekeyed.Certificate))
	if bytes.Equal(rkCert.RawSubjectPublicKeyInfo, newCert.RawSubjectPublicKeyInfo) {
		t.Fatal("the re-key kept the key")
	}
	if signed := sign(cred); !carries(signed, rekeyed.Certificate) {
		t.Fatal("after re-key, the signature does not carry the re-keyed certificate")
	}
	if n := count("SELECT count(*) FROM audit_log WHERE action = 'key.delete' AND object = '" + cred + "'"); n != 1 {
		t.Fatalf("the replaced key's destruction: %d records", n)
	}
	if revokedReason(renewed.Serial) != 4 {
		t.Fatal("the certificate replaced by the re-key is not revoked superseded")
	}

	// A mobile ID enrolled with an activation code (the operator never
	// knows the PIN) keeps its enrolment and login PIN across a re-key.
	mob := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	out := mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID).stdout
	m := regexp.MustCompile(`activation code: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("enrolment printed no activation code:\n%s", out)
	}
	act, _ := json.Marshal(signing.PINActivateRequest{ActivationCode: m[1], PIN: "135790"})
	if st, body, _ := f.do(t, c, http.MethodPost, "/api/v1/credentials/"+mob.CredentialID+"/pin/activate", "application/json", string(act), citizen); st != http.StatusOK {
		t.Fatalf("activating the mobile ID: %d %s", st, body)
	}
	if st, body, _ := f.do(t, c, http.MethodPost, "/api/v1/credentials/"+mob.CredentialID+"/pin/activate", "application/json", string(act), citizen); st != http.StatusConflict {
		t.Fatalf("the activation code used twice: %d %s", st, body)
	}
	rp := f.newPortal(t)
	mobileLogin := func() {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		q, ast := f.mobileLogin(t, rp.conf.AuthCodeURL("m", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n")), "12345678", "135790")
		if _, err := rp.exchange(t, q.Get("code"), verifier); ast != http.StatusOK || err != nil {
			t.Fatalf("mobile login: %d %v", ast, err)
		}
	}
	mobileLogin()
	st, body, mobRekeyed := renew(mob.Serial, `{"rekey": true}`, citizen)
	if st != http.StatusCreated || mobRekeyed.CredentialID != mob.CredentialID {
		t.Fatalf("re-keying the mobile ID: %d %s", st, body)
	}
	mobileLogin()

	// A CSR certificate is re-keyed with a new CSR, never with its own key.
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sub := citizenSubject()
	csrCert := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: csrFor(t, k1)})
	b, _ := json.Marshal(ca.RenewBody{CSR: csrFor(t, k1)})
	before = certs()
	st, body, _ = renew(csrCert.Serial, string(b), citizen)
	refused("a re-key CSR with the old key", st, body, http.StatusBadRequest, "urn:thiqa:problem:same-key")
	st, body, _ = renew(csrCert.Serial, `{"rekey": true}`, citizen)
	refused("re-key on the token of a CSR key", st, body, http.StatusBadRequest, "not on the service's token")
	st, body, _ = renew(csrCert.Serial, `{"csr": "not a CSR"}`, citizen)
	refused("a CSR that is not one", st, body, http.StatusBadRequest, "")
	if certs() != before {
		t.Fatal("a refused re-key stored a certificate")
	}
	b, _ = json.Marshal(ca.RenewBody{CSR: csrFor(t, k2)})
	st, body, csrRekeyed := renew(csrCert.Serial, string(b), citizen)
	if st != http.StatusCreated || csrRekeyed.Replaces != csrCert.Serial {
		t.Fatalf("re-key with a CSR: %d %s", st, body)
	}

	// A key is certified again only for its own subject, never for another's.
	otherSub := citizenSubject()
	otherSub["civilNumber"] = "23456789"
	b, _ = json.Marshal(ca.IssueRequest{Profile: "citizen-auth", Subject: otherSub, CSR: csrFor(t, k1)})
	before = certs()
	st, body, _ = f.do(t, c, http.MethodPost, "/api/v1/certificates", "application/json", string(b), f.officer)
	refused("another subject's key", st, body, http.StatusConflict, "urn:thiqa:problem:key-other-subject")
	if certs() != before {
		t.Fatal("a key certified for another subject was stored")
	}

	// A key past its crypto-period: citizen-auth keys are certified once.
	authCert := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, CSR: csrFor(t, k2)})
	st, body, _ = renew(authCert.Serial, `{}`, citizen)
	refused("a key past its crypto-period", st, body, http.StatusConflict, "urn:thiqa:problem:crypto-period-over")

	// A key revoked for keyCompromise is never renewed, by anyone.
	k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	comp := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: csrFor(t, k3)})
	f.revoke(t, comp.Serial)
	before = certs()
	st, body, _ = renew(comp.Serial, `{}`, citizen)
	refused("the citizen renews a compromised certificate", st, body, http.StatusConflict, "urn:thiqa:problem:not-renewable")
	st, body, _ = renew(comp.Serial, `{}`, f.officer)
	refused("an officer renews a compromised key", st, body, http.StatusBadRequest, "urn:thiqa:problem:key-compromised")
	if certs() != before {
		t.Fatal("a refused renewal of a compromised key stored a certificate")
	}
	// A certificate revoked for another reason is not renewed either, not
	// even by an officer (it was, 201): its subject may be what was wrong.
	k4, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k5, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	moved := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: csrFor(t, k4)})
	rekeyBody, _ := json.Marshal(ca.RenewBody{CSR: csrFor(t, k5)})
	if st, body, _ := f.do(t, c, http.MethodPost, "/api/v1/certificates/"+moved.Serial+"/revoke", "application/json", `{"reason":"affiliationChanged"}`, f.officer); st != http.StatusOK {
		t.Fatalf("revoke: %d %s", st, body)
	}
	before = certs()
	refusedBefore := count("SELECT count(*) FROM audit_log WHERE action = 'certificate.renew' AND outcome = 'refused'")
	for _, body := range []string{`{}`, string(rekeyBody)} {
		st, out, _ := renew(moved.Serial, body, f.officer)
		refused("an officer renews a revoked certificate with "+body[:min(len(body), 10)], st, out, http.StatusConflict, "urn:thiqa:problem:not-renewable")
	}
	if certs() != before {
		t.Fatal("a refused renewal of a revoked certificate stored a certificate")
	}
	if n := count("SELECT count(*) FROM audit_log WHERE action = 'certificate.renew' AND outcome = 'refused'"); n != refusedBefore+2 {
		t.Fatalf("%d refused renewals of a revoked certificate audited, want 2", n-refusedBefore)
	}
	// Malformed requests.
	st, body, _ = renew(first.Serial, `{"bogus": 1}`, f.officer)
	refused("an unknown member", st, body, http.StatusBadRequest, "")
	st, body, _ = renew("zz", `{}`, f.officer)
	refused("a serial that is not hex", st, body, http.StatusBadRequest, "")
	st, body, _ = renew("0123456789abcdef", `{}`, f.officer)
	refused("an unknown serial", st, body, http.StatusNotFound, "")
	if n := count("SELECT count(*) FROM audit_log WHERE action = 'certificate.renew' AND outcome = 'refused'"); n < 9 {
		t.Fatalf("%d refused renewals audited, want at least 9", n)
	}

	// What expires soon: the officer's listing, the holder's own.
	st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/certificates?expiringWithin=3660d", "", "", f.officer)
	var exp ca.ExpiringResponse
	if st != http.StatusOK || json.Unmarshal([]byte(body), &exp) != nil {
		t.Fatalf("expiring: %d %s", st, body)
	}
	listed := map[string]bool{}
	for _, e := range exp.Certificates {
		listed[e.Serial] = true
	}
	if !listed[rekeyed.Serial] || !listed[csrRekeyed.Serial] || listed[first.Serial] || listed[renewed.Serial] || listed[comp.Serial] {
		t.Fatalf("expiring lists %v", listed)
	}
	st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/certificates?expiringWithin=30d", "", "", f.officer)
	if st != http.StatusOK || strings.Contains(body, rekeyed.Serial) {
		t.Fatalf("expiring within 30d: %d %s", st, body)
	}
	for _, q := range []string{"", "?expiringWithin=soon", "?expiringWithin=-3d", "?expiringWithin=30d&limit=0"} {
		st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/certificates"+q, "", "", f.officer)
		refused("listing with "+q, st, body, http.StatusBadRequest, "expiringWithin")
	}
	st, _, _ = f.do(t, c, http.MethodGet, "/api/v1/certificates?expiringWithin=30d", "", "", citizen)
	refused("a citizen lists every certificate", st, "", http.StatusForbidden, "")

	st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/credentials?owner=self", "", "", citizen)
	var own signing.OwnCredentialsResponse
	if st != http.StatusOK || json.Unmarshal([]byte(body), &own) != nil || len(own.Credentials) != 2 {
		t.Fatalf("own credentials: %d %s", st, body)
	}
	for _, e := range own.Credentials {
		want := map[string]string{cred: rekeyed.Serial, mob.CredentialID: mobRekeyed.Serial}[e.CredentialID]
		if e.CertSerial != want || e.PIN != "set" || e.ExpiresInDays < 700 {
			t.Fatalf("own credential %+v, want its current certificate %s", e, want)
		}
	}
	st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/credentials?owner=self&expiringWithin=30d", "", "", citizen)
	if st != http.StatusOK || strings.Contains(body, "cred-") {
		t.Fatalf("own credentials expiring within 30d: %d %s", st, body)
	}
	st, body, _ = f.do(t, c, http.MethodGet, "/api/v1/credentials?owner=12345678", "", "", citizen)
	refused("owner other than self", st, body, http.StatusBadRequest, "owner=self")

	// The expiry gauge, by profile and window.
	st, body, _ = f.do(t, c, http.MethodGet, "/metrics", "", "", "")
	if st != http.StatusOK || !strings.Contains(body, `thiqa_certificates_expiring{profile="citizen-signing",within="30d"}`) {
		t.Fatalf("metrics: %d, no thiqa_certificates_expiring", st)
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}
