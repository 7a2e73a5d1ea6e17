package identity

import (
	"io"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/api/apitest"
)

// A token endpoint that cannot record its answer sends 503 server_error
// with Retry-After (docs/api.md, conventions), and the OpenAPI document
// lists that answer for both token endpoints, every member described.
func TestTokenUnavailableIsDocumented(t *testing.T) {
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, false)
	e.audit.setDown(true)
	for _, path := range []string{PathToken, PathCSCToken} {
		resp, err := e.browser.PostForm(e.srv.URL+path, e.tokenForm("no-such-code"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s with the audit log down: %d, Retry-After %q: %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if err := doc.CheckDescribed("POST", path, resp.StatusCode, "application/json", body); err != nil {
			t.Errorf("%s: the 503 answer is not in the OpenAPI document: %v", path, err)
		}
	}
}
