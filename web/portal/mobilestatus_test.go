package portal

import (
	"net/http"
	"strings"
	"testing"
)

// TestRevokedMobileIDShownRevoked: the citizen's home page shows a mobile
// ID (listed by GET /api/v1/credentials?owner=self only, not by CSC) with
// the certificate status that list says; a revoked one with days left was
// shown as valid.
func TestRevokedMobileIDShownRevoked(t *testing.T) {
	f, c, _ := activityFixture(t)
	answer := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/credentials" && r.URL.Query().Get("owner") == "self" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"owner":"12345678","credentials":[{"credentialID":"mob-1","kind":"mobile-id","profile":"citizen-auth",` +
				`"certSerial":"0ABC","notAfter":"2099-01-01T00:00:00Z","expiresInDays":26000,"pin":"set","certStatus":"revoked"}]}`))
			return
		}
		answer(w, r)
	}
	body := c.do("GET", "/my/?lang=en", nil).Body.String()
	if !strings.Contains(body, `state-revoked`) || strings.Contains(body, `state-valid`) {
		t.Fatalf("a revoked mobile ID on the home page:\n%s", body)
	}
}
