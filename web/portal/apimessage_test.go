package portal

import (
	"net/http"
	"testing"
)

// TestAPIMessageByProblemType: the signing service's PIN refusals and the
// CA's refusal to renew a revoked certificate are told by their problem
// type, whatever the detail's words (an English
// text the service may reword); a detail that merely mentions a lock or a
// PIN, under another type, is not taken for one.
func TestAPIMessageByProblemType(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	v := &view{p: &Portal{cat: cat}, lang: "en"}
	for _, c := range []struct {
		status  int
		body    string
		wantKey string
	}{
		{http.StatusLocked, `{"type":"` + problemPINLocked + `","status":423,"detail":"too many tries; an officer resets it"}`, "err.pin_locked"},
		{http.StatusForbidden, `{"type":"` + problemWrongPIN + `","status":403,"detail":"2 tries left"}`, "err.pin_wrong"},
		{http.StatusBadRequest, `{"type":"` + problemPINPolicy + `","status":400,"detail":"6 to 8"}`, "err.pin_policy"},
		{http.StatusConflict, `{"type":"` + problemNotRenewable + `","status":409,"detail":"certificate 0a is revoked"}`, "err.not_renewable"},
		// A detail that names a lock, not the PIN's: not the PIN message.
		{http.StatusConflict, `{"status":409,"detail":"the enrolment is locked by another request"}`, "err.api"},
		{http.StatusBadRequest, `{"status":400,"detail":"the PIN length of the token is unknown"}`, "err.api"},
	} {
		got := v.apiMessage(&apiAnswer{status: c.status, body: []byte(c.body)})
		want := v.t(c.wantKey)
		if len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("%s: %q, want it to start with %q", c.body, got, want)
		}
	}
}
