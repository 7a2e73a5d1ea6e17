package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/internal/outage"
)

// TestTokenSigningOutageIs503: when the provider's signing key is on a
// token that cannot be used for now (hsm marks the error) the token
// endpoint answers 503 server_error with a Retry-After, not 500; any other
// signing failure stays a 500. Either way the grant is spent.
func TestTokenSigningOutageIs503(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{
		{"token-unavailable", fmt.Errorf("hsm: signing with key %q: %w", "oidc", outage.Mark(errors.New("pkcs11: 0x30: CKR_DEVICE_ERROR"))), http.StatusServiceUnavailable},
		{"other-failure", errors.New("hsm: signing with key \"oidc\": pkcs11: 0x70: CKR_MECHANISM_INVALID"), http.StatusInternalServerError},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, false)
			form := e.tokenForm(e.mobileLogin())
			e.signErr.Store(&c.err)
			resp, err := e.browser.PostForm(e.srv.URL+PathToken, form)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.Unmarshal([]byte(readBody(t, resp)), &body)
			if resp.StatusCode != c.status || body["error"] != errServerError {
				t.Fatalf("token endpoint answered %d %v, want %d server_error", resp.StatusCode, body, c.status)
			}
			if ra := resp.Header.Get("Retry-After"); (c.status == http.StatusServiceUnavailable) != (ra != "") {
				t.Fatalf("HTTP %d with Retry-After %q", resp.StatusCode, ra)
			}
			if len(e.audit.find(oidcTokens.action, "failure")) != 1 {
				t.Fatalf("the failure was not audited once: %+v", e.audit.entries)
			}
		})
	}
}
