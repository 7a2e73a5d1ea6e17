package identity

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The login page tells the citizen, before they log in, what the portal
// will receive, as the tokens carry it: an identifier made for the
// portal's sector (or the civil number, for a portal allowed it), the
// names only with the profile scope, and how and when they logged in. A
// signing application's login (CSC) lists what it receives: the civil
// number its access token names and the signing certificates, which carry
// the name and civil number (it listed nothing, as if the application
// learned nothing about the citizen).
func TestLoginPageSaysWhatThePortalReceives(t *testing.T) {
	e := newEnv(t, false)
	civilClient, _ := e.addClient("portal-civil", true)
	page := func(path string, q url.Values) string {
		t.Helper()
		resp, err := e.browser.Get(e.srv.URL + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	const (
		pairwise = "an identifier for the services of portal.example.om, not your civil number"
		civil    = "<li>your civil number"
		names    = "your name (given name, family name and full name)"
		how      = "how and when you logged in"
	)
	for _, c := range []struct {
		name     string
		client   string
		scope    string
		has, not []string
	}{
		{"pairwise, profile", e.client.ID, "openid profile", []string{"When you log in, Portal portal-1 receives:", pairwise, names, how, "اسمك"}, []string{civil}},
		{"pairwise, openid", e.client.ID, "openid", []string{pairwise, how}, []string{civil, names}},
		{"civil number, openid", civilClient.ID, "openid", []string{civil, how, "رقمك المدني"}, []string{pairwise, names}},
	} {
		q := e.authQuery()
		q.Set("client_id", c.client)
		q.Set("scope", c.scope)
		body := page(PathAuthorize, q)
		for _, s := range c.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the login page does not say %q:\n%s", c.name, s, body)
			}
		}
		for _, s := range c.not {
			if strings.Contains(body, s) {
				t.Errorf("%s: the login page says %q, which the portal does not receive", c.name, s)
			}
		}
	}
	body := page(PathCSCAuthorize, e.cscQuery("service"))
	for _, s := range []string{`id="shares"`, civil, "your signing certificates, which carry your name and civil number", how, "شهادات التوقيع"} {
		if !strings.Contains(body, s) {
			t.Errorf("the signing application's login does not say %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, pairwise) {
		t.Errorf("the signing application's login promises an identifier other than the civil number:\n%s", body)
	}
}

// The phone's list of pending logins says what approving gives the
// portal or signing application, as the browser's login page does: the
// citizen approves on the phone, and the list said only who asks.
func TestPendingLoginsSayWhatApprovingGives(t *testing.T) {
	e := newEnv(t, false)
	q := e.authQuery()
	q.Set("scope", "openid profile")
	portal, _, _ := e.startMobile(q, testCivil)
	signing, _, _ := e.startMobileAt(PathCSCAuthorize, e.cscQuery("service"), testCivil)
	st, list := e.listAs(citizenCredential(testCivil), "")
	if st != http.StatusOK || len(list) != 2 {
		t.Fatalf("list: %d %+v", st, list)
	}
	want := map[string][]Shared{portal: sharedClaims(e.client, "openid profile"), signing: cscShares()}
	for _, ps := range list {
		w := want[ps.Session]
		if len(w) == 0 || !slices.Equal(ps.Shares, w) {
			t.Errorf("pending login %s (scope %q) lists %+v, want %+v", ps.Session, ps.Scope, ps.Shares, w)
		}
	}
	if !slices.ContainsFunc(want[portal], func(s Shared) bool { return strings.HasPrefix(s.EN, "your name") }) {
		t.Fatalf("a profile login's list leaves out the name: %+v", want[portal])
	}
}

// Portals registered with one sector share the pairwise identifier: the
// page said it was made for this service, while every portal of the
// sector receives the same one. It names the sector.
func TestLoginPageNamesTheSectorOfTheIdentifier(t *testing.T) {
	e := newEnv(t, false)
	c, _ := e.addClient("portal-sector", false)
	c.SectorIdentifier = "health.gov.example"
	q := e.authQuery()
	q.Set("client_id", c.ID)
	resp, err := e.browser.Get(e.srv.URL + PathAuthorize + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	for _, s := range []string{"an identifier for the services of health.gov.example, not your civil number", "معرّف خاص بخدمات health.gov.example"} {
		if !strings.Contains(body, s) {
			t.Errorf("the login page of a portal of sector health.gov.example does not say %q:\n%s", s, body)
		}
	}
}
