package portal

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/thiqa/thiqa/internal/ratelimit"
)

// TestAnonymousRefusalsBounded: a visitor who is not signed in may send
// forms without their CSRF token, or sign-in tokens that are refused, as
// often as they like; each used to cost an audit record. One address
// (httptest's) now gets 10 records at once, then only the first of each
// run; every refusal is still answered 403 or 401. A signed-in caller's
// refusals are not bounded: they name who sent them.
func TestAnonymousRefusalsBounded(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	token := csrf(t, c.do("GET", "/ra/?lang=en", nil))
	for i := range 40 {
		form, want := url.Values{"csrf": {"forged"}, "token": {"officer"}}, http.StatusForbidden
		if i%2 == 1 {
			form, want = url.Values{"csrf": {token}, "token": {"not-a-token"}}, http.StatusUnauthorized
		}
		if w := c.do("POST", "/ra/login", form); w.Code != want {
			t.Fatalf("request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if n := len(f.audit.actions()); n != 11 {
		t.Fatalf("%d records for 40 refusals of a visitor who is not signed in, want 11 (10, then the first of the run): %v", n, f.audit.actions())
	}
}

// TestAnonymousRefusalRecordedAfterAuditFailure: when the record of the
// first refusal past an address's budget could not be written (answered
// 500), the run's next refusal is recorded in its place
// (ratelimit.Refusal.Undo), not left out with the rest of the run.
func TestAnonymousRefusalRecordedAfterAuditFailure(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	forged := url.Values{"csrf": {"forged"}, "token": {"officer"}}
	for i := range ratelimit.AnonymousBurst {
		if w := c.do("POST", "/ra/login", forged); w.Code != http.StatusForbidden {
			t.Fatalf("refusal %d: %d", i+1, w.Code)
		}
	}
	f.audit.setDown(true)
	if w := c.do("POST", "/ra/login", forged); w.Code != http.StatusInternalServerError {
		t.Fatalf("the run's first refusal, unrecorded: %d, want 500", w.Code)
	}
	f.audit.setDown(false)
	before := len(f.audit.actions())
	for i := range 3 {
		if w := c.do("POST", "/ra/login", forged); w.Code != http.StatusForbidden {
			t.Fatalf("refusal %d after the failure: %d", i+1, w.Code)
		}
	}
	if n := len(f.audit.actions()) - before; n != 1 {
		t.Fatalf("%d records of the run's refusals after the failed one, want 1", n)
	}
}
