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
	"github.com/thiqa/thiqa/store/storetest"
)

// errAuditDown is what flakyAudit fails the records of "officer-odd" with.
var errAuditDown = errors.New("test: audit append failed")

// flakyAudit is the audit log, except that the success records of
// issuances requested by "officer-odd" cannot be written.
type flakyAudit struct{ log *audit.Log }

func fails(entries ...audit.Entry) bool {
	for _, e := range entries {
		if e.Actor == "officer-odd" && e.Outcome == audit.OutcomeSuccess {
			return true
		}
	}
	return false
}

func (f flakyAudit) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if fails(e) {
		return audit.Record{}, errAuditDown
	}
	return f.log.Append(ctx, e)
}

func (f flakyAudit) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	seal, err := f.log.Prepare(entries...)
	if err != nil || !fails(entries...) {
		return seal, err
	}
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) { return nil, errAuditDown }), nil
}

// downAudit is the audit log, except that the success records of action
// cannot be written while down is set.
type downAudit struct {
	log    *audit.Log
	down   *atomic.Bool
	action string
}

func (f downAudit) failing(entries ...audit.Entry) bool {
	for _, e := range entries {
		if f.down.Load() && e.Action == f.action && e.Outcome == audit.OutcomeSuccess {
			return true
		}
	}
	return false
}

func (f downAudit) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if f.failing(e) {
		return audit.Record{}, errAuditDown
	}
	return f.log.Append(ctx, e)
}

func (f downAudit) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	seal, err := f.log.Prepare(entries...)
	if err != nil {
		return nil, err
	}
	return audit.SealerFunc(func(h audit.Head) ([]audit.Record, error) {
		if f.failing(entries...) {
			return nil, errAuditDown
		}
		return seal.Seal(h)
	}), nil
}

// TestIssuanceNeverLacksItsRecord on SQLite and PostgreSQL: concurrent
// issuances (on SQLite committed together in one transaction) of which
// half cannot write their certificate.issue record. Those fail and leave no
// certificate issued for their key (nothing OCSP would answer "good" for);
// the others are issued, each with exactly one success record, and the
// chain verifies.
func TestIssuanceNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			certs := db.Certificates(func(string) int { return 4 })
			a := newAuditedAuthority(t, certs, flakyAudit{log})
			const n = 16
			reqs := make([]ca.Request, n)
			serials := make([]string, n)
			errs := make([]error, n)
			for i := range reqs {
				reqs[i] = citizenRequest(t)
				reqs[i].RequestedBy = "officer-even"
				if i%2 == 1 {
					reqs[i].RequestedBy = "officer-odd"
				}
			}
			var wg sync.WaitGroup
			for i := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := a.Issue(ctx, reqs[i])
					if err == nil {
						serials[i] = got.Serial
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			issued := map[string]int{}
			if err := db.AuditRecords(ctx, 1, func(r audit.Record) error {
				if r.Action == string(policies.ActionIssueCertificate) && r.Outcome == audit.OutcomeSuccess {
					issued[r.Object]++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, r := range reqs {
				csr, err := x509.ParseCertificateRequest(r.CSR)
				if err != nil {
					t.Fatal(err)
				}
				serial, err := certs.FindIssued(ctx, r.Profile, sha256.Sum256(csr.RawSubjectPublicKeyInfo), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					if errs[i] == nil || serial != "" {
						t.Errorf("request %d: issued %q (%v) without its audit record", i, serial, errs[i])
					}
					continue
				}
				if errs[i] != nil || serial != serials[i] || issued[serial] != 1 {
					t.Errorf("request %d: %v, serial %q (answered %q), %d success records", i, errs[i], serial, serials[i], issued[serial])
				}
			}
			if len(issued) != n/2 {
				t.Errorf("%d certificates recorded issued, want %d", len(issued), n/2)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}
