package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// setDown makes the audit log fail (true) or work again (false).
func (m *memAudit) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// No answer leaves without its audit record: while the audit log cannot
// be written, the pages' refusals (a forged CSRF token, a citizen at the
// officer console, refused credentials) and sign-ins are answered 500,
// and a sign-in makes no session; once the log is back they are answered
// as before.
func TestUnrecordedAnswerIsAFailure(t *testing.T) {
	f := newFixture(t)
	citizen := f.client()
	token := csrf(t, citizen.do("GET", "/my/approve?lang=en", nil))
	if w := citizen.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("citizen sign-in: %d %s", w.Code, w.Body.String())
	}
	for _, down := range []bool{true, false} {
		f.audit.setDown(down)
		want := func(normal int) int {
			if down {
				return http.StatusInternalServerError
			}
			return normal
		}
		if w := citizen.do("GET", "/ra/?lang=en", nil); w.Code != want(http.StatusForbidden) {
			t.Errorf("audit down %v: a citizen at the console: %d", down, w.Code)
		}
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang=en", nil))
		if w := o.do("POST", "/ra/login", url.Values{"csrf": {"forged"}, "token": {"officer"}}); w.Code != want(http.StatusForbidden) {
			t.Errorf("audit down %v: a forged CSRF token: %d", down, w.Code)
		}
		if w := o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"nonsense"}}); w.Code != want(http.StatusUnauthorized) {
			t.Errorf("audit down %v: a refused token: %d", down, w.Code)
		}
		token = csrf(t, o.do("GET", "/ra/?lang=en", nil))
		if w := o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != want(http.StatusForbidden) {
			t.Errorf("audit down %v: a citizen's token at the console: %d", down, w.Code)
		}
		token = csrf(t, o.do("GET", "/ra/?lang=en", nil))
		if w := o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}}); w.Code != want(http.StatusSeeOther) {
			t.Errorf("audit down %v: an officer's sign-in: %d", down, w.Code)
		}
		signedIn := strings.Contains(o.do("GET", "/ra/?lang=en", nil).Body.String(), "officer-1")
		if signedIn == down {
			t.Errorf("audit down %v: signed in afterwards: %v", down, signedIn)
		}
	}
}

// While the audit log is out for a while (a full disk, the database
// down: outage.Is) an unrecorded refusal is answered 503 with Retry-After,
// "try again later", not 500.
func TestUnrecordedAnswerInAnOutage(t *testing.T) {
	f := newFixture(t)
	citizen := f.client()
	token := csrf(t, citizen.do("GET", "/my/approve?lang=en", nil))
	if w := citizen.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("citizen sign-in: %d %s", w.Code, w.Body.String())
	}
	f.audit.mu.Lock()
	f.audit.outage = true
	f.audit.mu.Unlock()
	w := citizen.do("GET", "/ra/?lang=en", nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("a citizen at the console while the audit log is out: %d, Retry-After %q; want 503 with one", w.Code, w.Header().Get("Retry-After"))
	}
}
