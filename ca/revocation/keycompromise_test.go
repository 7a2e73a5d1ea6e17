package revocation_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// issueFor certifies key (from a CSR) under profile for a subject and
// writes the certificate to name; it returns the serial.
func (f *fixture) issueFor(t *testing.T, key crypto.Signer, profile, name string) string {
	t.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	sub := map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
	if profile == policies.ProfileOrganisationSeal {
		sub = map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "MoH seal", "country": "OM"}
	}
	got, err := f.pki.Authority.Issue(t.Context(), ca.Request{Profile: profile, CSR: csr, RequestedBy: "officer-7", Subject: sub})
	if err != nil {
		t.Fatalf("issuing %s: %v", profile, err)
	}
	catest.WritePEM(t, f.dir, name, got.Certificate)
	return got.Serial
}

// ocspStatus asks the server about the certificate in file (issued by the
// CA issuer) with openssl ocsp and returns its answer line.
func (f *fixture) ocspStatus(t *testing.T, issuer, file string) string {
	t.Helper()
	args := []string{"ocsp", "-issuer", f.path(issuer + ".pem"), "-url", f.base + "/ocsp", "-CAfile", f.path("root.pem"), "-nonce", "-cert", f.path(file)}
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, f.path(file)+": ") {
			return strings.TrimPrefix(l, f.path(file)+": ") + " " + reasonLine(string(out))
		}
	}
	t.Fatalf("no status line:\n%s", out)
	return ""
}

func reasonLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Reason:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// auditOf returns the audit records of action on object.
func auditOf(t *testing.T, db *store.DB, action, object string) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action == action && r.Object == object {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeyCompromisePropagates on SQLite and PostgreSQL: a key certified for
// citizen-signing, citizen-auth (CA citizen) and organisation-seal (CA
// organisation); revoking the signing certificate for keyCompromise revokes
// the other two (OCSP per openssl ocsp, the CRLs of both CAs), the status
// checker refuses them, the key cannot be certified again under any
// profile, and the audit log names the original of each consequence. A
// compromise recorded by another process reaches OCSP through the poller;
// a certificate revoked before for another reason keeps its revocation
// while its key is blocked.
func TestKeyCompromisePropagates(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runKeyCompromise(t, d) })
	}
}

func runKeyCompromise(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	catest.WritePEM(t, f.dir, "organisation.pem", f.pki.CAs["organisation"])
	f.start(t, 48*time.Hour)
	officer := f.issuer.Token(t, "officer-7", policies.RoleRegistrationOfficer)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signing := f.issueFor(t, key, policies.ProfileCitizenSigning, "signing.pem")
	auth := f.issueFor(t, key, policies.ProfileCitizenAuth, "auth.pem")
	// A key is never certified for two subjects (migration 0010); one
	// certified for a citizen and an agency before that rule existed is
	// planted by hiding the citizen's subject from the check, and its
	// compromise must still reach the other CA.
	sealCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if _, err := f.pki.Authority.Issue(t.Context(), ca.Request{Profile: policies.ProfileOrganisationSeal, CSR: sealCSR, RequestedBy: "officer-7",
		Subject: map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "MoH seal", "country": "OM"}}); !errors.Is(err, ca.ErrKeyOtherSubject) {
		t.Fatalf("the citizen's key certified for an agency: %v", err)
	}
	citizenDN := readCert(t, f.path("signing.pem")).Subject.String()
	legacySubjects(t, f.cfg, nil, signing, auth)
	seal := f.issueFor(t, key, policies.ProfileOrganisationSeal, "seal.pem")
	legacySubjects(t, f.cfg, citizenDN, signing, auth)
	bystander := f.issue(t, "23456789", "bystander.pem")
	authCert := readCert(t, f.path("auth.pem"))
	if err := f.status.Check(t.Context(), authCert); err != nil {
		t.Fatalf("fresh auth certificate refused: %v", err)
	}

	code, body := f.revoke(t, signing, officer, "keyCompromise")
	var rr revocation.RevokeResponse
	if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Reason != "keyCompromise" || !rr.KeyBlocked ||
		!slices.Equal(sorted(rr.AlsoRevoked), sorted([]string{auth, seal})) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for _, c := range []struct{ issuer, file string }{{"citizen", "signing.pem"}, {"citizen", "auth.pem"}, {"organisation", "seal.pem"}} {
		if got := f.ocspStatus(t, c.issuer, c.file); got != "revoked Reason: keyCompromise" {
			t.Fatalf("OCSP for %s: %s", c.file, got)
		}
	}
	if got := f.ocspStatus(t, "citizen", "bystander.pem"); !strings.HasPrefix(got, "good") {
		t.Fatalf("OCSP for an unrelated certificate: %s", got)
	}
	if err := f.status.Check(t.Context(), authCert); !errors.Is(err, revocation.ErrRefused) {
		t.Fatalf("the status checker accepts the auth certificate of a compromised key: %v", err)
	}
	waitFor(t, 20*time.Second, func() string {
		if c, o := f.crl(t, "citizen.crl"), f.crl(t, "organisation.crl"); !onCRL(c, signing) || !onCRL(c, auth) || !onCRL(o, seal) || onCRL(c, bystander) {
			return "the CRLs do not list the key's certificates yet"
		}
		return ""
	})

	// The key can never be certified again, whatever the profile.
	for _, p := range []string{policies.ProfileCitizenSigning, policies.ProfileCitizenAuth} {
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		_, err := f.pki.Authority.Issue(t.Context(), ca.Request{Profile: p, CSR: csr, RequestedBy: "officer-7",
			Subject: map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}})
		if !errors.Is(err, ca.ErrKeyBlocked) || !strings.Contains(err.Error(), signing) {
			t.Fatalf("re-certifying the compromised key for %s: %v", p, err)
		}
	}

	// The audit log: the revocation, the block, each consequence naming its original.
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	sum := sha256.Sum256(spki)
	if n := len(auditOf(t, f.db, revocation.AuditBlockKey, hex.EncodeToString(sum[:]))); n != 1 {
		t.Fatalf("%d key.block records", n)
	}
	for _, s := range []string{auth, seal} {
		recs := auditOf(t, f.db, string(policies.ActionRevokeCertificate), s)
		var d struct{ ConsequenceOf, OriginReason, Reason string }
		if len(recs) != 1 || json.Unmarshal(recs[0].Details, &d) != nil || d.ConsequenceOf != signing || d.OriginReason != "keyCompromise" || d.Reason != "keyCompromise" {
			t.Fatalf("audit of the consequential revocation of %s: %+v", s, recs)
		}
	}
	// Once more: nothing left to do.
	code, body = f.revoke(t, auth, officer, "keyCompromise")
	wantProblem(t, "compromised twice", code, body, http.StatusConflict, "already revoked and its key blocked")

	// Superseded first, then reported compromised: the revocation stands
	// (final), the key is blocked and its other certificate revoked.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	old := f.issueFor(t, k2, policies.ProfileCitizenSigning, "old.pem")
	sibling := f.issueFor(t, k2, policies.ProfileCitizenAuth, "sibling.pem")
	if code, body := f.revoke(t, old, officer, "superseded"); code != http.StatusOK {
		t.Fatalf("superseded: %d %s", code, body)
	}
	code, body = f.revoke(t, old, officer, "keyCompromise")
	rr = revocation.RevokeResponse{}
	if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Reason != "superseded" || !rr.KeyBlocked || !slices.Equal(rr.AlsoRevoked, []string{sibling}) {
		t.Fatalf("keyCompromise after superseded: %d %s", code, body)
	}
	if got := f.ocspStatus(t, "citizen", "old.pem"); got != "revoked Reason: superseded" {
		t.Fatalf("OCSP for the superseded certificate: %s", got)
	}
	if got := f.ocspStatus(t, "citizen", "sibling.pem"); got != "revoked Reason: keyCompromise" {
		t.Fatalf("OCSP for its sibling: %s", got)
	}

	// Another process (`thiqa revoke`) reports a key compromised: the
	// server's poller carries the consequential revocation to OCSP.
	k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	first := f.issueFor(t, k3, policies.ProfileCitizenSigning, "k3-signing.pem")
	second := f.issueFor(t, k3, policies.ProfileCitizenAuth, "k3-auth.pem")
	if got := f.ocspStatus(t, "citizen", "k3-auth.pem"); !strings.HasPrefix(got, "good") {
		t.Fatalf("OCSP before: %s", got)
	}
	other := storetest.Open(t, f.cfg)
	cli, err := revocation.New(revocation.Options{Store: other.Revocations(), Certificates: other.Certificates(nil), Audit: audit.New(other, nil, nil, audit.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cli.Revoke(t.Context(), "cli:operator", first, "keyCompromise", nil); err != nil || len(r.AlsoRevoked) != 1 || r.AlsoRevoked[0].Serial != second {
		t.Fatalf("keyCompromise in another process: %+v %v", r, err)
	}
	waitFor(t, 15*time.Second, func() string {
		if got := f.ocspStatus(t, "citizen", "k3-auth.pem"); got != "revoked Reason: keyCompromise" {
			return "the server has not learnt of the consequential revocation: " + got
		}
		return ""
	})
}

// legacySubjects sets the subject column of the certificates serials to
// subject (nil: NULL), outside the store: rows as an older version left them.
func legacySubjects(t *testing.T, cfg store.Config, subject any, serials ...string) {
	t.Helper()
	driver := "sqlite"
	if cfg.Driver == store.DriverPostgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range serials {
		q := "UPDATE certificates SET subject = ? WHERE serial = ?"
		if driver == "pgx" {
			q = "UPDATE certificates SET subject = $1 WHERE serial = $2"
		}
		if _, err := db.Exec(q, subject, s); err != nil {
			t.Fatal(err)
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
