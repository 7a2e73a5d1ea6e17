package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/policies"
)

// countingAudit counts the records appended.
type countingAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (c *countingAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e)
	return audit.Record{}, nil
}

func (c *countingAudit) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// TestUnauthenticatedRefusalsBounded: a request without credentials, or
// with a forged token, is answered 401 every time, but anyone may send
// them: past the address's budget (10 at once) only the first refusal of
// each run is recorded, and it says so. Another address has its own
// budget; the refusal of an authenticated caller (403) is always recorded.
func TestUnauthenticatedRefusalsBounded(t *testing.T) {
	sink := &countingAudit{}
	a, err := New(Config{}, Options{Audit: sink})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Require(policies.ActionIssueCertificate)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	call := func(remote, bearer string) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/certificates", nil)
		req.RemoteAddr = remote
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range 51 {
		bearer := ""
		if i%2 == 1 {
			bearer = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
		}
		if code := call("198.51.100.10:4000", bearer); code != http.StatusUnauthorized {
			t.Fatalf("request %d: HTTP %d, want 401", i+1, code)
		}
	}
	if n := sink.count(); n != 11 {
		t.Fatalf("%d records for 51 unauthenticated refusals from one address, want 11 (10, then the first of the run)", n)
	}
	if d, ok := sink.entries[10].Details.(refusal); !ok || d.Note == "" {
		t.Fatalf("the first record past the budget: details %+v, want a note that further refusals are not recorded", sink.entries[10].Details)
	}
	call("192.0.2.6:4000", "")
	if n := sink.count(); n != 12 {
		t.Fatalf("another address: %d records, want 12", n)
	}
}

// TestIdentifiedRefusalsAlwaysRecorded: a token that verified but is
// refused (it expired, its grant was revoked) names who presented it, and
// a revoked one in use may be stolen: each of its 401s is recorded, past
// the budget of anonymous refusals of the address too, as an
// authenticated caller's 403 is. A forged token from the same address
// stays within the budget.
func TestIdentifiedRefusalsAlwaysRecorded(t *testing.T) {
	f := newDelegatedFixture(t)
	h := f.a.Require(policies.ActionSign)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	call := func(token string) int {
		t.Helper()
		req := bearerRequest(token)
		req.RemoteAddr = "198.51.100.11:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	count := func() int {
		f.audit.mu.Lock()
		defer f.audit.mu.Unlock()
		return len(f.audit.entries)
	}
	for range 12 { // the address's budget spent on forged tokens
		call("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	}
	before := count()
	expired := f.access("service")
	expired["exp"] = f.clock.Now().Add(-time.Hour).Unix()
	f.mu.Lock()
	f.revoked["grant-2"] = true
	f.mu.Unlock()
	revoked := f.access("service")
	revoked["jti"] = "grant-2"
	for _, tok := range []string{f.mint(t, expired, "at+jwt"), f.mint(t, revoked, "at+jwt")} {
		for i := range 15 {
			if code := call(tok); code != http.StatusUnauthorized {
				t.Fatalf("request %d: HTTP %d, want 401", i+1, code)
			}
		}
	}
	if n := count() - before; n != 30 {
		t.Fatalf("%d records of 30 refusals of verified tokens past the address's budget, want 30", n)
	}
	call("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	if n := count() - before; n != 30 {
		t.Fatalf("a forged token past the budget was recorded (%d records)", n)
	}
}

// TestUnauthenticatedBudgetIgnoresSpoofedForwarding: behind
// clientip.Resolver.Middleware, a peer that is not a trusted proxy cannot
// buy itself a fresh budget with a new X-Forwarded-For on each request:
// its refusals are keyed by its own address, 10 recorded, then the first
// of the run. Through a trusted proxy each forwarded client has its own.
func TestUnauthenticatedBudgetIgnoresSpoofedForwarding(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    int
	}{
		{"untrusted peer", nil, 11},
		{"trusted proxy", []string{"198.51.100.0/24"}, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &countingAudit{}
			a, err := New(Config{}, Options{Audit: sink})
			if err != nil {
				t.Fatal(err)
			}
			res, err := clientip.New(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			h := res.Middleware(a.Require(policies.ActionIssueCertificate)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			for i := range 30 {
				req := httptest.NewRequest(http.MethodPost, "/api/v1/certificates", nil)
				req.RemoteAddr = "198.51.100.12:4000"
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("request %d: HTTP %d, want 401", i+1, rec.Code)
				}
			}
			if n := sink.count(); n != tc.want {
				t.Fatalf("%d records of 30 refusals, want %d", n, tc.want)
			}
		})
	}
}

// TestCertificateOfNoRuleAlwaysRecorded: a client certificate of a
// configured client CA that matches no role rule verified (its chain, and
// its key in the TLS handshake) and names its holder: each of its 401s is
// recorded, past the address's budget of anonymous refusals too.
func TestCertificateOfNoRuleAlwaysRecorded(t *testing.T) {
	ca := newTestCA(t, "Client CA")
	sink := &countingAudit{}
	a, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}},
		Options{Logger: quietLogger(), CheckCertificate: acceptAll, Audit: sink})
	if err != nil {
		t.Fatal(err)
	}
	norule := ca.issue(t, pkix.Name{CommonName: "no role here"})
	h := a.Require(policies.ActionIssueCertificate)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a certificate of no rule was let through")
	}))
	call := func(cert *x509.Certificate) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/certificates", nil)
		req.RemoteAddr = "198.51.100.13:4000"
		if cert != nil {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert, ca.cert}}}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for range 12 { // the address's budget spent
		call(nil)
	}
	before := sink.count()
	for i := range 8 {
		if code := call(norule.Leaf); code != http.StatusUnauthorized {
			t.Fatalf("request %d: HTTP %d, want 401", i+1, code)
		}
	}
	if n := sink.count() - before; n != 8 {
		t.Fatalf("%d records of 8 refusals of a verified certificate of no rule past the address's budget, want 8", n)
	}
}

// TestUnauthenticatedRefusalRecordedAfterAuditFailure: when the record of
// the first refusal past an address's budget could not be written
// (answered 500), the run's next refusal is recorded in its place
// (ratelimit.Refusal.Undo), not left out with the rest of the run.
func TestUnauthenticatedRefusalRecordedAfterAuditFailure(t *testing.T) {
	sink := &memAudit{}
	a, err := New(Config{}, Options{Audit: sink})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Require(policies.ActionIssueCertificate)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	call := func() int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/certificates", nil)
		req.RemoteAddr = "198.51.100.11:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range ratelimit.AnonymousBurst {
		if code := call(); code != http.StatusUnauthorized {
			t.Fatalf("refusal %d: HTTP %d", i+1, code)
		}
	}
	sink.mu.Lock()
	sink.failing = true
	sink.mu.Unlock()
	if code := call(); code != http.StatusInternalServerError {
		t.Fatalf("the run's first refusal, unrecorded: HTTP %d, want 500", code)
	}
	sink.mu.Lock()
	sink.failing = false
	sink.mu.Unlock()
	sink.take()
	for i := range 3 {
		if code := call(); code != http.StatusUnauthorized {
			t.Fatalf("refusal %d after the failure: HTTP %d", i+1, code)
		}
	}
	if n := len(sink.take()); n != 1 {
		t.Fatalf("%d records of the run's refusals after the failed one, want 1", n)
	}
}
