package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestEnrolmentNeverLacksItsRecord on SQLite and PostgreSQL: while the
// enrolment's records cannot be written, Create records no enrolment and
// Enrol does not mark the enrolment used (its certificate stands, with
// its issuance record); once the log is back, a retry creates the
// enrolment, and a retry for the same key completes the enrolment with
// that certificate (no second one), each with exactly one success record.
func TestEnrolmentNeverLacksItsRecord(t *testing.T) {
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			gate := audittest.New(log)
			pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
			svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
				Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: gate, SecretKey: secretKey,
				Profiles: []string{policies.ProfileCitizenAuth}})
			if err != nil {
				t.Fatal(err)
			}
			subject := map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
			rows := func() int64 {
				n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM enrolments`)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			gate.Down.Store(true)
			if _, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, subject, 0); err == nil {
				t.Fatal("an enrolment was created with the audit log down")
			}
			if n := rows(); n != 0 {
				t.Fatalf("%d enrolments recorded without their audit record", n)
			}
			gate.Down.Store(false)
			c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, subject, 0)
			if err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if n, m := rows(), storetest.AuditCount(t, db, enrol.ActionCreate, audit.OutcomeSuccess); n != 1 || m != 1 {
				t.Fatalf("%d enrolments, %d success records of their creation", n, m)
			}

			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
			if err != nil {
				t.Fatal(err)
			}
			gate.Down.Store(true)
			e, err := svc.Lookup(ctx, c.Reference)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Enrol(ctx, e, "est:1", enrol.Key{CSR: csr}, "est"); err == nil {
				t.Fatal("an enrolment was used with the audit log down")
			}
			if e, err := svc.Lookup(ctx, c.Reference); err != nil || e.State == enrol.StateUsed {
				t.Fatalf("the enrolment was marked used without its audit record: %+v %v", e, err)
			}
			if n := storetest.AuditCount(t, db, enrol.ActionConsume, audit.OutcomeSuccess); n != 0 {
				t.Fatalf("%d use records", n)
			}
			gate.Down.Store(false)
			e, err = svc.Lookup(ctx, c.Reference)
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.Enrol(ctx, e, "est:2", enrol.Key{CSR: csr}, "est")
			if err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if len(got.Chain) != 2 || got.Certificate == nil {
				t.Fatalf("the retry answered %+v", got)
			}
			e, err = svc.Lookup(ctx, c.Reference)
			if err != nil || e.State != enrol.StateUsed || e.Serial != got.Serial {
				t.Fatalf("after the retry: %+v %v (answered %s)", e, err, got.Serial)
			}
			if n := storetest.AuditCount(t, db, enrol.ActionConsume, audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d use records after a failed append and a retry", n)
			}
			if n := storetest.AuditCount(t, db, string(policies.ActionIssueCertificate), audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d certificates issued for one enrolment", n)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}

// TestEnrolmentRetryNeedsTheKeyAndAValidCertificate on SQLite and
// PostgreSQL: the certificate of an enrolment whose use could not be
// recorded is not answered to a retry whose CSR carries its public key
// without being signed with it (no proof of possession), nor once it was
// revoked; the enrolment stays unused, without a use record.
func TestEnrolmentRetryNeedsTheKeyAndAValidCertificate(t *testing.T) {
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			gate := audittest.New(log)
			pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
			svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
				Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: gate, SecretKey: secretKey,
				Profiles: []string{policies.ProfileCitizenAuth}})
			if err != nil {
				t.Fatal(err)
			}
			subject := map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
			c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, subject, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
			if err != nil {
				t.Fatal(err)
			}
			gate.Down.Store(true)
			e, err := svc.Lookup(ctx, c.Reference)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Enrol(ctx, e, "est:1", enrol.Key{CSR: csr}, "est"); err == nil {
				t.Fatal("an enrolment was used with the audit log down")
			}
			gate.Down.Store(false)
			spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			serial, err := db.Certificates(nil).FindIssued(ctx, policies.ProfileCitizenAuth, sha256.Sum256(spki), time.Now())
			if err != nil || serial == "" {
				t.Fatalf("the certificate issued under the enrolment: %q %v", serial, err)
			}
			unused := func(what string) {
				t.Helper()
				e, err := svc.Lookup(ctx, c.Reference)
				if err != nil || e.State == enrol.StateUsed {
					t.Fatalf("%s: the enrolment was completed: %+v %v", what, e, err)
				}
				if n := storetest.AuditCount(t, db, enrol.ActionConsume, audit.OutcomeSuccess); n != 0 {
					t.Fatalf("%s: %d use records", what, n)
				}
			}

			// Its public key in a CSR not signed with it.
			forged := slices.Clone(csr)
			forged[len(forged)-1] ^= 0x01
			if parsed, err := x509.ParseCertificateRequest(forged); err != nil || parsed.CheckSignature() == nil {
				t.Fatalf("the forged CSR: %v", err)
			}
			e, err = svc.Lookup(ctx, c.Reference)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := svc.Enrol(ctx, e, "est:2", enrol.Key{CSR: forged}, "est"); err == nil {
				t.Fatalf("a CSR not signed with the key obtained certificate %s", got.Serial)
			}
			unused("a forged CSR")

			// The certificate revoked since.
			if _, err := db.Revocations().Revoke(ctx, serial, crl.ReasonSuperseded, "officer-1", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			e, err = svc.Lookup(ctx, c.Reference)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := svc.Enrol(ctx, e, "est:3", enrol.Key{CSR: csr}, "est"); err == nil {
				t.Fatalf("the retry completed the enrolment with revoked certificate %s", got.Serial)
			}
			unused("a revoked certificate")
		})
	}
}
