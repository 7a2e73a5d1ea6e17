package store_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
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
