package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
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
