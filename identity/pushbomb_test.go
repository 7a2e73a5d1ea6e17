package identity

import (
	"net/http"
	"strings"
	"testing"
)

// TestPendingLoginsBounded: whoever knows a civil number can start mobile
// logins for it; without a bound, a script buries the citizen's phone
// under approval requests (push bombing) and pushes the citizen's own
// login off the phone's list. Past Config.MaxPendingLogins a start is
// refused (429, audited) alike for a number with a mobile ID and one
// without, and a login that ends makes room again.
func TestPendingLoginsBounded(t *testing.T) {
	e := newEnv(t, false)
	start := func(civil string) (*http.Response, string) {
		t.Helper()
		f := e.authQuery()
		f.Set("civil_number", civil)
		resp, err := e.browser.PostForm(e.srv.URL+PathAuthorize, f)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	var first, firstCode string
	for i := range defaultMaxPendingLogins {
		s, _, c := e.startMobile(e.authQuery(), testCivil)
		if i == 0 {
			first, firstCode = s, c
		}
	}
	resp, body := start(testCivil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many logins") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("start past the bound: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, `name="key"`) {
		t.Fatal("a refused start got a login session")
	}
	if st, list := e.listAs(citizenCredential(testCivil), ""); st != 200 || len(list) != defaultMaxPendingLogins {
		t.Fatalf("phone list: %d %d", st, len(list))
	}
	refused := e.audit.find("oidc.login", "refused")
	if len(refused) != 1 || !strings.Contains(refused[0].Details.(map[string]any)["reason"].(string), "await approval") {
		t.Fatalf("audit: %+v", refused)
	}

	// A number without a mobile ID answers alike: the bound tells nothing.
	for range defaultMaxPendingLogins {
		e.startMobile(e.authQuery(), "87654321")
	}
	if resp, body := start("87654321"); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many logins") {
		t.Fatalf("unknown number past the bound: %d", resp.StatusCode)
	}

	// One login ends (approved): there is room for one more.
	if st := e.approve(first, firstCode, testPIN); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	e.startMobile(e.authQuery(), testCivil)
	if resp, _ := start(testCivil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second start past the bound: %d", resp.StatusCode)
	}
}
