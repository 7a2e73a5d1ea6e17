package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestVoidRefusesUnrecordedIssue on SQLite and PostgreSQL: when a
// certificate was issued under an enrolment whose use could not be
// recorded (the enrolment is open again, the certificate stands with
// request ID enrolment:<reference>), a void is refused as for a used
// enrolment (revoke the certificate instead) and leaves it open; once
// that certificate is revoked, the void goes through.
func TestVoidRefusesUnrecordedIssue(t *testing.T) {
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			pki, svc := voidService(t, db, secretKey)
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
			// What Enrol leaves when recording the use fails: the
			// certificate issued under the enrolment's request ID, the
			// enrolment open.
			actor := "enrolment:" + c.Reference
			got, err := pki.Authority.Issue(ctx, ca.Request{Profile: policies.ProfileCitizenAuth, Subject: subject, CSR: csr, RequestID: actor, RequestedBy: actor})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Void(ctx, "officer-2", c.Reference, "letter lost"); !errors.Is(err, enrol.ErrUsed) {
				t.Fatalf("void of an enrolment whose certificate stands: %v", err)
			}
			if e, err := svc.Lookup(ctx, c.Reference); err != nil || e.State != enrol.StateOpen {
				t.Fatalf("after the refused void: %+v %v", e, err)
			}
			if _, err := db.Revocations().Revoke(ctx, got.Serial, crl.ReasonKeyCompromise, "officer-2", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			e, err := svc.Void(ctx, "officer-2", c.Reference, "letter lost")
			if err != nil || e.State != enrol.StateVoid {
				t.Fatalf("void once the certificate is revoked: %+v %v", e, err)
			}
		})
	}
}

// TestVoidClaimRace on SQLite and PostgreSQL: a void and a claim of the
// same open enrolment at once: exactly one wins; the loser is refused
// (the claim ErrVoid, the void ErrBusy), and the enrolment ends void or
// claimed accordingly.
func TestVoidClaimRace(t *testing.T) {
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			_, svc := voidService(t, db, secretKey)
			subject := map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
			st := db.Enrolments()
			wins := map[string]int{}
			for i := range 20 {
				c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, subject, 0)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var claimErr, voidErr error
				start := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					now := time.Now()
					claimErr = st.ClaimEnrolment(ctx, c.Reference, "est:race", now, now.Add(-enrol.ClaimTimeout))
				}()
				go func() {
					defer wg.Done()
					<-start
					_, voidErr = svc.Void(ctx, "officer-2", c.Reference, "race")
				}()
				close(start)
				wg.Wait()
				e, err := st.GetEnrolment(ctx, c.Reference)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case claimErr == nil && errors.Is(voidErr, enrol.ErrBusy) && e.State == enrol.StateClaimed:
					wins["claim"]++
				case voidErr == nil && errors.Is(claimErr, enrol.ErrVoid) && e.State == enrol.StateVoid:
					wins["void"]++
				default:
					t.Fatalf("round %d: claim %v, void %v, state %s", i, claimErr, voidErr, e.State)
				}
			}
			t.Logf("wins: %v", wins)
		})
	}
}

// TestVoidRefusesIssuingUnderStaleClaim on SQLite and PostgreSQL: a
// request whose claim went stale (older than enrol.ClaimTimeout) may
// still be issuing: while a live intent stands under the enrolment's
// request ID the void is refused as busy and the enrolment stays
// claimed; an intent abandoned long ago (its process died) does not
// stop the void.
func TestVoidRefusesIssuingUnderStaleClaim(t *testing.T) {
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			_, svc := voidService(t, db, secretKey)
			subject := map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
			for i, age := range []time.Duration{time.Second, time.Hour} {
				c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, subject, 0)
				if err != nil {
					t.Fatal(err)
				}
				claimed := time.Now().Add(-enrol.ClaimTimeout - time.Minute)
				if err := db.Enrolments().ClaimEnrolment(ctx, c.Reference, "est:slow", claimed, claimed.Add(-enrol.ClaimTimeout)); err != nil {
					t.Fatal(err)
				}
				if err := db.Certificates(nil).InsertIntent(ctx, ca.Intent{Serial: fmt.Sprintf("7e57%02x", i), CA: "citizen", Profile: policies.ProfileCitizenAuth,
					KeyHash: sha256.Sum256([]byte(c.Reference)), RequestID: enrol.RequestID(c.Reference), RequestedBy: enrol.RequestID(c.Reference),
					NotAfter: time.Now().Add(time.Hour), Created: time.Now().Add(-age)}); err != nil {
					t.Fatal(err)
				}
				e, err := svc.Void(ctx, "officer-2", c.Reference, "letter lost")
				if age == time.Second {
					if !errors.Is(err, enrol.ErrBusy) {
						t.Fatalf("void while a certificate is being issued under a stale claim: %+v %v", e, err)
					}
					if e, err := svc.Lookup(ctx, c.Reference); err != nil || e.State != enrol.StateClaimed {
						t.Fatalf("after the refused void: %+v %v", e, err)
					}
					continue
				}
				if err != nil || e.State != enrol.StateVoid {
					t.Fatalf("void beside an intent abandoned long ago: %+v %v", e, err)
				}
				// Its request, slower still, could complete it
				// (InsertCertificate completes a pending intent): the void
				// abandons it, with its request ID.
				if n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM certificates WHERE serial = ? AND state = 'intent'`, fmt.Sprintf("7e57%02x", i)); err != nil || n != 0 {
					t.Fatalf("the old intent under the void enrolment is still pending (%d): %v", n, err)
				}
			}
		})
	}
}

// voidService is the enrolment service of the void tests over db: a test
// PKI whose CA issues the citizen-auth profile, and its audit log.
func voidService(t *testing.T, db *store.DB, secretKey *rsa.PrivateKey) (*catest.PKI, *enrol.Service) {
	t.Helper()
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: secretKey,
		Profiles: []string{policies.ProfileCitizenAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return pki, svc
}
