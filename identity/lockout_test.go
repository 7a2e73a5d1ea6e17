package identity

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// startFrom starts a mobile login for civil from the client at remote
// ("ip:port"); it returns the status and the session (empty when refused).
func (e *env) startFrom(remote, civil string) (int, string) {
	e.t.Helper()
	f := e.authQuery()
	f.Set("civil_number", civil)
	rec := e.serveFrom(remote, http.MethodPost, PathAuthorize, f, nil)
	if m := reSession.FindStringSubmatch(rec.Body.String()); m != nil {
		return rec.Code, m[1]
	}
	return rec.Code, ""
}

// denyAllAs posts the phone's deny-all with the Authorization header value
// authz and body; it returns the status and the body.
func (e *env) denyAllAs(authz, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathMobileDenyAll, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, readBody(e.t, resp)
}

// TestPendingBoundPerAddress: the bound on a civil number's pending
// logins was per number alone, so whoever knew a citizen's number locked
// the citizen out of mobile-ID login: five starts every LoginLifetime
// and the citizen's own got 429. The bound is now per starting address
// (an IPv6 /64 is one address, as for the rate limit): the attacker's
// address is refused, the citizen's own start from elsewhere gets in and
// is first on the phone's list; all addresses together stop at
// MaxPendingListed.
func TestPendingBoundPerAddress(t *testing.T) {
	e := newEnv(t, false)
	for i := range defaultMaxPendingLogins {
		// One IPv6 /64, a fresh address each time: one client.
		if st, s := e.startFrom(fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1), testCivil); st != http.StatusOK || s == "" {
			t.Fatalf("attacker start %d: %d", i, st)
		}
	}
	if st, _ := e.startFrom("[2001:db8:1:2::99]:4000", testCivil); st != http.StatusTooManyRequests {
		t.Fatalf("a sixth start from the same /64: %d, want 429", st)
	}
	refused := e.audit.find("oidc.login", "refused")
	if len(refused) != 1 || !strings.Contains(refused[0].Details.(map[string]any)["reason"].(string), "from this address") ||
		refused[0].Details.(map[string]any)["address"] != "2001:db8:1:2::/64" {
		t.Fatalf("audit of the refusal: %+v", refused)
	}

	st, own := e.startFrom("198.51.100.7:5000", testCivil)
	if st != http.StatusOK || own == "" {
		t.Fatalf("the citizen's own start while another address keeps five pending: %d, want 200", st)
	}
	if st, list := e.listAs(citizenCredential(testCivil), ""); st != http.StatusOK || len(list) != defaultMaxPendingLogins+1 || list[0].Session != own {
		t.Fatalf("phone list: %d %+v, want the citizen's own login first", st, list)
	}

	// All addresses together: at most MaxPendingListed.
	for a := 1; ; a++ {
		for i := range defaultMaxPendingLogins {
			st, _ := e.startFrom(fmt.Sprintf("203.0.113.%d:%d", a, 4000+i), testCivil)
			n, _ := e.store.CountPendingLogins(t.Context(), testCivil, "", e.p.now())
			if n.Total > MaxPendingListed {
				t.Fatalf("%d pending logins, past %d", n.Total, MaxPendingListed)
			}
			if st == http.StatusTooManyRequests {
				if n.Total != MaxPendingListed {
					t.Fatalf("refused at %d pending logins, want %d", n.Total, MaxPendingListed)
				}
				if st, list := e.listAs(citizenCredential(testCivil), ""); st != http.StatusOK || len(list) != MaxPendingListed {
					t.Fatalf("full phone list: %d %d", st, len(list))
				}
				return
			}
		}
	}
}

// TestDenyAllPending: under number matching the citizen can neither
// approve the logins someone else started with their number nor clear
// them. POST /oidc/mobile/deny-all denies every one of the caller's
// pending logins (the browsers that started them get access_denied),
// touches no other citizen's, is audited with the sessions, and frees
// the bound at once for every address but those whose logins it denied.
func TestDenyAllPending(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.NumberMatching = true })
	var attacker []string
	for i := range defaultMaxPendingLogins {
		_, s := e.startFrom(fmt.Sprintf("192.0.2.66:%d", 4000+i), testCivil)
		attacker = append(attacker, s)
	}
	otherSession, otherKey, _ := e.startMobile(e.authQuery(), "87654321")

	if st, _ := e.denyAllAs("", ""); st != http.StatusUnauthorized {
		t.Fatalf("deny-all without credentials: %d", st)
	}
	if st, _ := e.denyAllAs("Bearer officer:1", ""); st != http.StatusForbidden {
		t.Fatalf("deny-all by another role: %d", st)
	}
	if st, body := e.denyAllAs(citizenCredential(testCivil), `{"session":"x"}`); st != http.StatusBadRequest || !strings.Contains(body, "Malformed") {
		t.Fatalf("deny-all with an unknown member: %d %s", st, body)
	}
	if n, _ := e.store.CountPendingLogins(t.Context(), testCivil, "", e.p.now()); n.Total != defaultMaxPendingLogins {
		t.Fatalf("a refused deny-all denied logins: %d pending", n.Total)
	}

	st, body := e.denyAllAs(citizenCredential(testCivil), "")
	if st != http.StatusOK || !strings.Contains(body, `"status":"denied"`) || !strings.Contains(body, fmt.Sprintf(`"denied":%d`, defaultMaxPendingLogins)) {
		t.Fatalf("deny-all: %d %s", st, body)
	}
	if st, list := e.listAs(citizenCredential(testCivil), ""); st != http.StatusOK || len(list) != 0 {
		t.Fatalf("phone list after deny-all: %d %+v", st, list)
	}
	for _, s := range attacker {
		if l, _ := e.store.Login(t.Context(), s); l.State != LoginDenied || l.Reason != reasonDeniedByCitizen {
			t.Fatalf("login %s after deny-all: %s %q", s, l.State, l.Reason)
		}
	}
	rec := e.audit.find(ActionDenyAll, "success")
	if len(rec) != 1 || rec[0].Actor != "citizen:"+testCivil || len(rec[0].Details.(map[string]any)["sessions"].([]string)) != defaultMaxPendingLogins {
		t.Fatalf("audit: %+v", rec)
	}
	// Another citizen's login is untouched, and still completes its way.
	if l, _ := e.store.Login(t.Context(), otherSession); l.State != LoginPending {
		t.Fatalf("another citizen's login: %s", l.State)
	}
	if q, st := e.complete(otherSession, otherKey); q != nil || st != http.StatusAccepted {
		t.Fatalf("another citizen's login after deny-all: %d %v", st, q)
	}
	// The bound frees at once for other addresses; the address whose
	// logins the citizen denied may start none for one LoginLifetime.
	if st, _ := e.startFrom("192.0.2.66:4999", testCivil); st != http.StatusTooManyRequests {
		t.Fatalf("start after deny-all from the denied address: %d, want 429", st)
	}
	if got := rec[0].Details.(map[string]any)["blockedAddresses"]; fmt.Sprint(got) != "[192.0.2.66]" {
		t.Fatalf("audit of the blocked addresses: %v", got)
	}
	if st, _ := e.startFrom("203.0.113.9:4999", testCivil); st != http.StatusOK {
		t.Fatalf("start after deny-all from another address: %d", st)
	}
	// Nothing pending: 200, none denied.
	if st, _ := e.denyAllAs(citizenCredential("87654321"), "{}"); st != http.StatusOK {
		t.Fatalf("deny-all of the other citizen: %d", st)
	}
	if st, body := e.denyAllAs(citizenCredential("87654321"), "{}"); st != http.StatusOK || !strings.Contains(body, `"denied":0`) {
		t.Fatalf("deny-all with nothing pending: %d %s", st, body)
	}
}

// TestDeniedLoginCompletesDenied: the browser of a login the citizen
// denied from the phone is sent back to the portal with access_denied.
func TestDeniedLoginCompletesDenied(t *testing.T) {
	e := newEnv(t, false)
	s, k, _ := e.startMobile(e.authQuery(), testCivil)
	if st, _ := e.denyAllAs(citizenCredential(testCivil), ""); st != http.StatusOK {
		t.Fatalf("deny-all: %d", st)
	}
	if q, st := e.complete(s, k); q == nil || q.Get("error") != errAccessDenied {
		t.Fatalf("complete after deny-all: %d %v", st, q)
	}
}
