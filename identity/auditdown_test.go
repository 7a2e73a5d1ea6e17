package identity

import (
	"net/http"
	"testing"
)

// setDown makes the audit log fail (true) or work again (false).
func (a *memAudit) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = down
}

// No refusal leaves without its audit record: while the audit log cannot
// be written, requests the provider refuses are answered as failures of
// the service (server_error), and once it is back they are refused as
// before.
func TestUnrecordedRefusalIsAFailure(t *testing.T) {
	e := newEnv(t, false)
	// A mobile login waiting for the phone, started while the log works.
	session, _, code := e.startMobile(e.authQuery(), testCivil)
	for _, down := range []bool{true, false} {
		e.audit.setDown(down)
		wantCode, wantStatus := "invalid_request", http.StatusBadRequest
		if down {
			wantCode, wantStatus = errServerError, http.StatusServiceUnavailable
		}
		// An authorization request without PKCE: refused on the redirect URI.
		q := e.authQuery()
		q.Del("code_challenge")
		resp, err := e.browser.Get(e.srv.URL + PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if rq := redirectQuery(t, resp); rq == nil || rq.Get("error") != wantCode || rq.Get("state") != "st-1" {
			t.Errorf("audit down %v: authorize without PKCE answered %d %v, want error %s", down, resp.StatusCode, rq, wantCode)
		}
		// The same at the CSC authorization endpoint.
		q = e.cscQuery("service")
		q.Del("code_challenge")
		resp, err = e.browser.Get(e.srv.URL + PathCSCAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if rq := redirectQuery(t, resp); rq == nil || rq.Get("error") != wantCode {
			t.Errorf("audit down %v: CSC authorize without PKCE answered %d %v, want error %s", down, resp.StatusCode, rq, wantCode)
		}
		// An unknown client: an error page, never a redirect.
		q = e.authQuery()
		q.Set("client_id", "nobody")
		resp, err = e.browser.Get(e.srv.URL + PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != wantStatus || resp.Header.Get("Location") != "" {
			t.Errorf("audit down %v: unknown client answered %d, want %d", down, resp.StatusCode, wantStatus)
		}
		// An unknown authorization code at the token endpoint.
		wantGrant := "invalid_grant"
		if down {
			wantGrant = errServerError
		}
		if st, out := e.exchange(e.tokenForm("no-such-code")); st != wantStatus || out["error"] != wantGrant {
			t.Errorf("audit down %v: unknown code answered %d %v, want %d %s", down, st, out, wantStatus, wantGrant)
		}
	}
	// A phone approval with the wrong verification code: refused (403),
	// or a failure while the log cannot record the refusal. The login is
	// denied either way, so the check runs once, with the log down.
	e.audit.setDown(true)
	if st := e.approve(session, wrongCode(code), testPIN); st != http.StatusServiceUnavailable {
		t.Errorf("audit down: wrong verification code answered %d, want 503", st)
	}
	e.audit.setDown(false)
	session, _, code = e.startMobile(e.authQuery(), testCivil)
	if st := e.approve(session, wrongCode(code), testPIN); st != http.StatusForbidden {
		t.Errorf("audit up: wrong verification code answered %d, want 403", st)
	}
}

// wrongCode is a verification code other than code.
func wrongCode(code string) string {
	if code == "0000" {
		return "1111"
	}
	return "0000"
}
