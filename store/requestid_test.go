package store_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRequestIDFreeAfterCertificateNotStored on SQLite and PostgreSQL: a
// request whose certificate could not be stored (its certificate.issue
// record could not be written) may be sent again at once with the same
// request ID (an enrolment always sends enrolment:<reference>) and is then
// issued; the request ID still admits no second certificate.
func TestRequestIDFreeAfterCertificateNotStored(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			var down atomic.Bool
			certs := db.Certificates(nil)
			a := newAuditedAuthority(t, certs, downAudit{log: log, down: &down, action: string(policies.ActionIssueCertificate)})
			req := citizenRequest(t)
			req.RequestID = "enrolment:ABCD-EFGH"

			down.Store(true)
			if _, err := a.Issue(ctx, req); err == nil {
				t.Fatal("issued with the audit log down")
			}
			down.Store(false)
			got, err := a.Issue(ctx, req)
			if err != nil {
				t.Fatalf("the retry with the same request ID: %v", err)
			}
			if rec, err := certs.GetCertificate(ctx, got.Serial); err != nil || rec.RequestID != req.RequestID {
				t.Fatalf("the certificate's record: %+v %v", rec, err)
			}
			again := citizenRequest(t)
			again.RequestID = req.RequestID
			if _, err := a.Issue(ctx, again); !errors.Is(err, ca.ErrDuplicateRequest) {
				t.Fatalf("a second certificate under one request ID: %v", err)
			}
			if n := storetest.AuditCount(t, db, string(policies.ActionIssueCertificate), audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d certificate.issue success records", n)
			}
		})
	}
}

// TestCrashedIntentReleasesRequestID on SQLite and PostgreSQL: an intent
// left by a process that died between recording it and storing its
// certificate (kill -9 while signing) holds its request ID; once it is
// older than the grace an issuance takes, a retry under that request ID
// (an enrolment always sends enrolment:<reference>) is issued, with the
// same key or another, and the intent is abandoned: its serial stays
// reserved and it can never be completed, so one request ID still has one
// certificate. A live intent keeps its request ID.
func TestCrashedIntentReleasesRequestID(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			a := newAuthority(t, certs)
			crashed := func(serial, requestID string, keyHash [32]byte, age time.Duration) {
				t.Helper()
				if err := certs.InsertIntent(ctx, ca.Intent{Serial: serial, CA: "citizen", Profile: policies.ProfileCitizenAuth, TBSHash: [32]byte{7},
					KeyHash: keyHash, RequestID: requestID, RequestedBy: requestID, NotAfter: time.Now().Add(time.Hour), Created: time.Now().Add(-age)}); err != nil {
					t.Fatal(err)
				}
			}

			// Another key: the request ID alone is held.
			crashed("7d01", "enrolment:OTHER-KEY", [32]byte{1}, time.Hour)
			req := citizenRequest(t)
			req.RequestID = "enrolment:OTHER-KEY"
			if _, err := a.Issue(ctx, req); err != nil {
				t.Fatalf("a request ID held by a crashed intent stays blocked: %v", err)
			}
			again := citizenRequest(t)
			again.RequestID = req.RequestID
			if _, err := a.Issue(ctx, again); !errors.Is(err, ca.ErrDuplicateRequest) {
				t.Fatalf("a second certificate under one request ID: %v", err)
			}

			// The same key: the key and the request ID are held by one intent.
			req = citizenRequest(t)
			req.RequestID = "enrolment:SAME-KEY"
			crashed("7d02", req.RequestID, csrKeyHash(t, req.CSR), time.Hour)
			if _, err := a.Issue(ctx, req); err != nil {
				t.Fatalf("a request ID and key held by a crashed intent stay blocked: %v", err)
			}

			// A live intent (its process may still be signing) keeps it.
			crashed("7d03", "enrolment:LIVE", [32]byte{3}, 0)
			req = citizenRequest(t)
			req.RequestID = "enrolment:LIVE"
			if _, err := a.Issue(ctx, req); !errors.Is(err, ca.ErrDuplicateRequest) {
				t.Fatalf("a request ID held by a live intent: %v", err)
			}

			// The crashed intents can never be completed, and their serials stay reserved.
			for _, serial := range []string{"7d01", "7d02"} {
				if _, err := certs.GetCertificate(ctx, serial); !errors.Is(err, ca.ErrNotFound) {
					t.Fatalf("crashed intent %s: %v", serial, err)
				}
				err := certs.InsertIntent(ctx, ca.Intent{Serial: serial, CA: "citizen", Profile: policies.ProfileCitizenAuth, TBSHash: [32]byte{8},
					KeyHash: [32]byte{8}, RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()})
				if !errors.Is(err, ca.ErrDuplicateSerial) {
					t.Fatalf("the serial of crashed intent %s reused: %v", serial, err)
				}
			}
			for _, id := range []string{"enrolment:OTHER-KEY", "enrolment:SAME-KEY"} {
				if n, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE request_id = '"+id+"' AND state = 'issued'"); err != nil || n != 1 {
					t.Fatalf("%d certificates under %s, %v", n, id, err)
				}
			}
		})
	}
}

// csrKeyHash is the key hash (SHA-256 of the SPKI) of a CSR's key.
func csrKeyHash(t *testing.T, der []byte) [32]byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(csr.RawSubjectPublicKeyInfo)
}

// stalledStore is a ca.Store whose issuances stall between signing and
// storing, as a live process hung in the HSM for longer than the intent
// grace: its intents are recorded age in the past, and during runs before
// each certificate is stored.
type stalledStore struct {
	*store.Certificates
	age    time.Duration
	during func()
}

func (s stalledStore) InsertIntent(ctx context.Context, in ca.Intent) error {
	in.Created = in.Created.Add(-s.age)
	return s.Certificates.InsertIntent(ctx, in)
}

func (s stalledStore) InsertCertificate(ctx context.Context, rec ca.CertificateRecord, seal audit.Sealer) error {
	s.during()
	return s.Certificates.InsertCertificate(ctx, rec, seal)
}

// TestStalledIssuanceNeverStoredAfterItsRequestIDIsFreed on SQLite and
// PostgreSQL: a process that recorded its intent, then stalled past the
// grace, is still alive. A retry under its request ID (an enrolment's,
// with the same key, or anyone's with another key) frees the request ID
// and is issued; the stalled process's certificate, signed already, is
// then refused when it tries to store it. With retries racing the stalled
// store, exactly one of them all is issued, whichever wins: one request
// ID never has two certificates.
func TestStalledIssuanceNeverStoredAfterItsRequestIDIsFreed(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			live := newAuthority(t, certs)
			issued := func(requestID string) int64 {
				t.Helper()
				n, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE request_id = '"+requestID+"' AND state = 'issued'")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			// In turn: the retry while the process is stalled, with the same
			// key (an enrolment's retry) or another.
			for _, sameKey := range []bool{true, false} {
				req := citizenRequest(t)
				req.RequestID = "enrolment:STALLED-OTHER-KEY"
				if sameKey {
					req.RequestID = "enrolment:STALLED-SAME-KEY"
				}
				var retried *ca.Issued
				stalled := newAuthority(t, stalledStore{Certificates: certs, age: time.Hour, during: func() {
					retry := req
					if !sameKey {
						retry = citizenRequest(t)
						retry.RequestID = req.RequestID
					}
					var err error
					if retried, err = live.Issue(ctx, retry); err != nil {
						t.Errorf("the retry while the first issuance is stalled: %v", err)
					}
				}})
				if got, err := stalled.Issue(ctx, req); err == nil {
					t.Fatalf("the stalled issuance stored certificate %s after its request ID was freed", got.Serial)
				}
				if n := issued(req.RequestID); n != 1 || retried == nil {
					t.Fatalf("%d certificates under %s, want the retry's only", n, req.RequestID)
				}
				if rec, err := certs.GetCertificate(ctx, retried.Serial); err != nil || rec.RequestID != req.RequestID {
					t.Fatalf("the retry's certificate: %+v %v", rec, err)
				}
			}

			// Racing: retries (other keys) start as the stalled process stores.
			const retries = 6
			var wg sync.WaitGroup
			var won atomic.Int32
			raced := citizenRequest(t)
			raced.RequestID = "enrolment:RACED"
			stalled := newAuthority(t, stalledStore{Certificates: certs, age: time.Hour, during: func() {
				for range retries {
					wg.Go(func() {
						again := citizenRequest(t)
						again.RequestID = raced.RequestID
						switch _, err := live.Issue(ctx, again); {
						case err == nil:
							won.Add(1)
						case !errors.Is(err, ca.ErrDuplicateRequest):
							t.Errorf("a racing retry: %v", err)
						}
					})
				}
			}})
			if _, err := stalled.Issue(ctx, raced); err == nil {
				won.Add(1)
			}
			wg.Wait()
			if n, w := issued(raced.RequestID), won.Load(); n != 1 || w != 1 {
				t.Fatalf("%d certificates under %s and %d issuances answered, want 1 and 1", n, raced.RequestID, w)
			}
		})
	}
}
