package identity

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// listRaw asks for the pending sessions as testCivil and returns the body.
func (e *env) listRaw() string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+PathMobileList, nil)
	req.Header.Set("Authorization", citizenCredential(testCivil))
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readBody(e.t, resp)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	return body
}

// TestNumberMatching: a citizen under push bombing (someone else started
// a login with their civil number) used to see that login's code on the
// phone and could approve it with one tap. With number matching the list
// leaves the code out, an approval without a code is refused and leaves
// the login pending, a wrong code cancels the login (one try, audited,
// no PIN try spent), and the code typed from the browser, in Arabic or
// ASCII digits, approves.
func TestNumberMatching(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.NumberMatching = true })
	s, _, code := e.startMobile(e.authQuery(), testCivil)

	body := e.listRaw()
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("list: %v %s", err, body)
	}
	if _, ok := raw[0]["verificationCode"]; ok || strings.Contains(body, code) {
		t.Fatalf("the phone's list shows the code under number matching: %s", body)
	}
	for _, k := range []string{"session", "clientID", "clientName", "expires"} {
		if _, ok := raw[0][k]; !ok {
			t.Fatalf("the list lost %s: %s", k, body)
		}
	}

	// No code: refused (400, audited), not a guess: the login stays.
	before := len(e.audit.find(auditPhone, "refused"))
	if st := e.approve(s, "", testPIN); st != http.StatusBadRequest {
		t.Fatalf("approval without a code: %d", st)
	}
	if len(e.audit.find(auditPhone, "refused")) != before+1 || e.store.logins[s].State != LoginPending {
		t.Fatalf("approval without a code: audit %d, state %s", len(e.audit.find(auditPhone, "refused"))-before, e.store.logins[s].State)
	}

	// A wrong code: refused, audited, and the login is cancelled.
	wrong := "0000"
	if code == wrong {
		wrong = "1111"
	}
	if st := e.approve(s, wrong, testPIN); st != http.StatusForbidden {
		t.Fatalf("wrong code: %d", st)
	}
	if l := e.store.logins[s]; l.State != LoginDenied {
		t.Fatalf("a wrong code left the login %s", l.State)
	}
	refused := e.audit.find("oidc.login", "refused")
	if len(refused) != 1 || !strings.Contains(refused[0].Details.(map[string]any)["reason"].(string), "wrong verification code") {
		t.Fatalf("wrong code audited: %+v", refused)
	}
	if e.pins.fails[testCredID] != 0 {
		t.Fatal("a wrong code spent a PIN try")
	}
	if st := e.approve(s, code, testPIN); st != http.StatusConflict {
		t.Fatalf("the right code after a wrong one: %d, want 409 (cancelled)", st)
	}

	// The code of the browser, typed with an Arabic keyboard, approves.
	s, k, code := e.startMobile(e.authQuery(), testCivil)
	arabic := strings.Map(func(r rune) rune { return r - '0' + '\u0660' }, code)
	if st := e.approve(s, " "+arabic+" ", testPIN); st != http.StatusOK {
		t.Fatalf("approval with the typed code: %d", st)
	}
	if q, _ := e.complete(s, k); q.Get("code") == "" {
		t.Fatalf("no code after the approval: %v", q)
	}
}

// TestNumberMatchingWaitPage: the browser tells the citizen to type the
// code on the phone under number matching, and keeps its words without.
func TestNumberMatchingWaitPage(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := newEnvWith(t, false, func(c *Config) { c.NumberMatching = on })
		f := e.authQuery()
		f.Set("civil_number", testCivil)
		resp, err := e.browser.PostForm(e.srv.URL+PathAuthorize, f)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if got := strings.Contains(body, `id="type-code"`); got != on || strings.Contains(body, "check that it shows this code") == on {
			t.Fatalf("number matching %v: wait page\n%s", on, body)
		}
	}
}

// TestNumberMatchingOffUnchanged: without number matching the list shows
// each login's code as before, and an approval without a code is a wrong
// code (the login refused), as before.
func TestNumberMatchingOffUnchanged(t *testing.T) {
	e := newEnv(t, false)
	s, _, code := e.startMobile(e.authQuery(), testCivil)
	l := e.store.logins[s]
	exp, _ := json.Marshal(l.Expires)
	// shares was added after (what approving gives the portal); the keys
	// before it are unchanged.
	shares, _ := json.Marshal(sharedClaims(e.client, l.Request.Scope))
	want := `[{"session":"` + s + `","verificationCode":"` + code + `","clientID":"portal-1","clientName":"Portal portal-1","expires":` + string(exp) + `,"shares":` + string(shares) + "}]\n"
	if got := e.listRaw(); got != want {
		t.Fatalf("list:\n got %s\nwant %s", got, want)
	}
	if st := e.approve(s, "", testPIN); st != http.StatusForbidden || e.store.logins[s].State != LoginDenied {
		t.Fatalf("approval without a code: %d %s", st, e.store.logins[s].State)
	}
}

// approveProblem posts the phone's approval as testCivil and returns the
// status and the problem's type.
func (e *env) approveProblem(session, code, pin string) (int, string) {
	e.t.Helper()
	b, _ := json.Marshal(ApproveRequest{Session: session, VerificationCode: code, PIN: pin})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathMobileApprove, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", citizenCredential(testCivil))
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var pd struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal([]byte(readBody(e.t, resp)), &pd)
	return resp.StatusCode, pd.Type
}

// TestWrongCodeProblemType: the phone (the portal's page) could tell a
// wrong code, which cancels the login under number matching, from any
// other refusal only by the words of the problem's detail. A wrong code
// has its own problem type, with or without number matching; a wrong PIN
// has not.
func TestWrongCodeProblemType(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := newEnvWith(t, false, func(c *Config) { c.NumberMatching = on })
		s, _, code := e.startMobile(e.authQuery(), testCivil)
		wrong := "0000"
		if code == wrong {
			wrong = "1111"
		}
		if st, typ := e.approveProblem(s, wrong, testPIN); st != http.StatusForbidden || typ != ProblemWrongCode {
			t.Fatalf("number matching %v, wrong code: %d %q", on, st, typ)
		}
		s, _, code = e.startMobile(e.authQuery(), testCivil)
		if st, typ := e.approveProblem(s, code, "000000"); st != http.StatusForbidden || typ != "" {
			t.Fatalf("number matching %v, wrong PIN: %d %q", on, st, typ)
		}
	}
}

// TestNumberMatchingMalformedCode: under number matching a code that was
// not digits (a slip of the keyboard: "48a1", a full stop) was taken as a
// wrong guess and cancelled the citizen's own login. It is refused as
// malformed (400), and the login stays pending for the right code.
func TestNumberMatchingMalformedCode(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.NumberMatching = true })
	s, _, code := e.startMobile(e.authQuery(), testCivil)
	for _, bad := range []string{"48a1", code + ".", "-" + code} {
		if st := e.approve(s, bad, testPIN); st != http.StatusBadRequest || e.store.logins[s].State != LoginPending {
			t.Fatalf("code %q: %d, login %s", bad, st, e.store.logins[s].State)
		}
	}
	if st := e.approve(s, code, testPIN); st != http.StatusOK {
		t.Fatalf("the right code after malformed ones: %d", st)
	}
}
