package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRevocationNeverLacksItsRecord on SQLite and PostgreSQL: when the
// audit append fails, Revoke fails and nothing is revoked (no certificate
// answered revoked without its certificate.revoke record); the retry
// revokes it with exactly one success record. The same holds for a
// keyCompromise revocation, its key block and its consequences.
func TestRevocationNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			pki := catest.New(t, db.Certificates(nil), log, baseURL)
			gate := audittest.New(log)
			svc, err := revocation.New(revocation.Options{Store: db.Revocations(), Certificates: db.Certificates(nil), Audit: gate})
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{pki: pki, dir: t.TempDir()}
			revoke := string(policies.ActionRevokeCertificate)

			k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			serial := f.issueFor(t, k1, policies.ProfileCitizenSigning, "a.pem")
			gate.Down.Store(true)
			if _, err := svc.Revoke(t.Context(), "officer-7", serial, "superseded", nil); err == nil {
				t.Fatal("revoked with the audit log down")
			}
			if rv, err := db.Revocations().Revocation(t.Context(), serial); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("revoked without its audit record: %+v %v", rv, err)
			}
			gate.Down.Store(false)
			if _, err := svc.Revoke(t.Context(), "officer-7", serial, "superseded", nil); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if n := countOutcome(auditOf(t, db, revoke, serial), audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d success records of the revocation after a failed append and a retry", n)
			}

			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			origin := f.issueFor(t, k2, policies.ProfileCitizenSigning, "b.pem")
			sibling := f.issueFor(t, k2, policies.ProfileCitizenAuth, "c.pem")
			gate.Down.Store(true)
			if _, err := svc.Revoke(t.Context(), "officer-7", origin, "keyCompromise", nil); err == nil {
				t.Fatal("keyCompromise recorded with the audit log down")
			}
			for _, s := range []string{origin, sibling} {
				if rv, err := db.Revocations().Revocation(t.Context(), s); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s revoked without its audit record: %+v %v", s, rv, err)
				}
			}
			gate.Down.Store(false)
			r, err := svc.Revoke(t.Context(), "officer-7", origin, "keyCompromise", nil)
			if err != nil || len(r.AlsoRevoked) != 1 || r.AlsoRevoked[0].Serial != sibling {
				t.Fatalf("the retry: %+v %v", r, err)
			}
			for _, s := range []string{origin, sibling} {
				if n := countOutcome(auditOf(t, db, revoke, s), audit.OutcomeSuccess); n != 1 {
					t.Fatalf("%d success records of the revocation of %s", n, s)
				}
			}
			var blocks int
			if err := db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
				if r.Action == revocation.AuditBlockKey {
					blocks++
				}
				return nil
			}); err != nil || blocks != 1 {
				t.Fatalf("%d key.block records, %v", blocks, err)
			}
			if rep, err := audit.Verify(t.Context(), db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}

func countOutcome(recs []audit.Record, outcome string) int {
	n := 0
	for _, r := range recs {
		if r.Outcome == outcome {
			n++
		}
	}
	return n
}
