package identity

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPhoneSideAuthentication checks that the phone side of the remote
// login serves only the citizen whose login it is.
func TestPhoneSideAuthentication(t *testing.T) {
	const otherCivil = "87654321"
	e := newEnv(t, false)
	s, k, code := e.startMobile(e.authQuery(), testCivil)
	own, other, agency := citizenCredential(testCivil), citizenCredential(otherCivil), "Bearer agency:NTROM-1234567"

	// Listing: no credentials 401, other roles 403, another citizen sees
	// nothing, a civil_number naming someone else 403.
	if st, _ := e.listAs("", ""); st != http.StatusUnauthorized {
		t.Fatalf("list without credentials: %d", st)
	}
	if st, _ := e.listAs("", "civil_number="+testCivil); st != http.StatusUnauthorized {
		t.Fatalf("list by civil number without credentials: %d", st)
	}
	if st, _ := e.listAs(agency, ""); st != http.StatusForbidden {
		t.Fatalf("list with an agency credential: %d", st)
	}
	if st, l := e.listAs(other, ""); st != http.StatusOK || len(l) != 0 {
		t.Fatalf("another citizen's list: %d %+v", st, l)
	}
	if st, l := e.listAs(other, "civil_number="+testCivil); st != http.StatusForbidden || l != nil {
		t.Fatalf("another citizen asking for this citizen's list: %d %+v", st, l)
	}
	if st, l := e.listAs(own, "civil_number="+testCivil); st != http.StatusOK || len(l) != 1 || l[0].VerificationCode != code {
		t.Fatalf("own list with own civil number: %d %+v", st, l)
	}

	// Approving: no credentials 401, other roles 403, another citizen 403
	// even with the right code and PIN, and the login stays pending.
	if st := e.approveAs("", s, code, testPIN); st != http.StatusUnauthorized {
		t.Fatalf("approve without credentials: %d", st)
	}
	if st := e.approveAs(agency, s, code, testPIN); st != http.StatusForbidden {
		t.Fatalf("approve with an agency credential: %d", st)
	}
	if st := e.approveAs(other, s, code, testPIN); st != http.StatusForbidden {
		t.Fatalf("approve another citizen's login: %d", st)
	}
	if l := e.store.logins[s]; l.State != LoginPending {
		t.Fatalf("another citizen's attempt changed the login: %s", l.State)
	}
	if n := e.pins.fails[testCredID]; n != 0 {
		t.Fatalf("another citizen's attempt counted as a PIN try: %d", n)
	}
	refused := e.audit.find(auditPhone, "refused")
	if len(refused) != 2 || refused[0].Actor != "citizen:"+otherCivil || refused[1].Object != s {
		t.Fatalf("phone-side refusals audited: %+v", refused)
	}
	if len(e.audit.find("oidc.login", "success")) != 0 || len(e.store.grants) != 0 {
		t.Fatal("a refused phone request led to a login")
	}

	// The citizen's own approval still works.
	if st := e.approveAs(own, s, code, testPIN); st != http.StatusOK {
		t.Fatalf("own approval: %d", st)
	}
	if q, _ := e.complete(s, k); q.Get("code") == "" {
		t.Fatalf("no code after the own approval: %v", q)
	}
}

// TestPhoneSideNotServedWithoutAuthentication checks that a provider
// without PhoneAuth serves no phone side, and that PhoneAuth and Caller go
// together.
func TestPhoneSideNotServedWithoutAuthentication(t *testing.T) {
	e := newEnv(t, false)
	cfg := e.p.cfg
	cfg.PhoneAuth, cfg.Caller = nil, nil
	cfg.Registerer = nil
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, PathMobileList+"?civil_number="+testCivil, nil),
		httptest.NewRequest(http.MethodPost, PathMobileApprove, strings.NewReader(`{"session":"s","verificationCode":"1234","pin":"4711"}`)),
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("%s %s served without phone authentication: %d", r.Method, r.URL.Path, rec.Code)
		}
	}
	cfg.PhoneAuth = fakePhoneAuth
	if _, err := New(cfg); err == nil {
		t.Fatal("PhoneAuth without Caller accepted")
	}
}

// TestPhoneSideRefusalsAudited checks that every refusal of the phone
// side's approval leaves one audit record naming the citizen, with the
// status the caller is answered: a body that is not an approval, a session
// that does not exist, and a login no longer pending.
func TestPhoneSideRefusalsAudited(t *testing.T) {
	e := newEnv(t, false)
	s, _, code := e.startMobile(e.authQuery(), testCivil)
	if st := e.approve(s, code, testPIN); st != http.StatusOK {
		t.Fatalf("approval: %d", st)
	}
	malformed := func() int {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathMobileApprove, strings.NewReader(`{"session":`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", citizenCredential(testCivil))
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp.StatusCode
	}
	for _, c := range []struct {
		name   string
		send   func() int
		status int
	}{
		{"malformed body", malformed, http.StatusBadRequest},
		{"unknown session", func() int { return e.approve("no-such-session", code, testPIN) }, http.StatusNotFound},
		{"login not pending", func() int { return e.approve(s, code, testPIN) }, http.StatusConflict},
	} {
		before := len(e.audit.find(auditPhone, "refused"))
		if st := c.send(); st != c.status {
			t.Fatalf("%s: %d, want %d", c.name, st, c.status)
		}
		got := e.audit.find(auditPhone, "refused")
		if len(got) != before+1 {
			t.Fatalf("%s: %d refusal records, want 1", c.name, len(got)-before)
		}
		r := got[len(got)-1]
		if d, _ := r.Details.(map[string]any); r.Actor != "citizen:"+testCivil || d["status"] != c.status {
			t.Fatalf("%s: record %+v", c.name, r)
		}
	}
}
