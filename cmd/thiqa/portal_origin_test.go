package main

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPortalOrigin: the portal's origin is publicBaseURL, except on a
// production deployment whose publicBaseURL stays http (CRLs, OCSP) on a
// real host while the digital ID's issuer is https: there browsers use the
// issuer's origin (its path left out).
func TestPortalOrigin(t *testing.T) {
	for _, c := range []struct {
		base, issuer, want string
		moved              bool
	}{
		{"http://ca.example.test", "https://id.example.test", "https://id.example.test", true},
		{"http://ca.example.test", "https://ID.example.test:8443/idp", "https://id.example.test:8443", true},
		{"http://ca.example.test", "https://ca.example.test", "https://ca.example.test", true},
		{"http://ca.example.test", "http://id.example.test", "http://ca.example.test", false},
		{"http://ca.example.test", "http://ca.example.test", "http://ca.example.test", false}, // no identity.issuer
		{"http://ca.example.test", "", "http://ca.example.test", false},                       // the digital ID off
		{"https://thiqa.example.om", "https://id.example.om", "https://thiqa.example.om", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "http://127.0.0.1:8080", false}, // make run
		{"http://127.0.0.1:8080", "https://id.example.test", "http://127.0.0.1:8080", false},
		{"http://localhost:8080", "https://id.example.test", "http://localhost:8080", false},
		{"http://[::1]:8080", "https://id.example.test", "http://[::1]:8080", false},
	} {
		got, moved := portalOrigin(c.base, c.issuer)
		if got != c.want || moved != c.moved {
			t.Errorf("portalOrigin(%q, %q) = %q, %t; want %q, %t", c.base, c.issuer, got, moved, c.want, c.moved)
		}
	}
	if !portalSecure(false, "https://id.example.test") {
		t.Error("the portal on an https origin has no Secure cookies")
	}
}

// noRedirects is an HTTP client that returns redirects instead of
// following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// onHost sends GET path to srv with the given Host header.
func onHost(t *testing.T, srv *server, host, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// startPortalLogin asks for /my/login on host and returns the
// authorization request it sends the browser to, and the session cookie.
func startPortalLogin(t *testing.T, srv *server, host string) (*url.URL, *http.Cookie) {
	t.Helper()
	resp, body := onHost(t, srv, host, "/my/login")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("/my/login on %s: %d (the portal cannot sign citizens in?)\n%s\n%s", host, resp.StatusCode, body, srv.stderr.String())
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/oidc/authorize" {
		t.Fatalf("/my/login on %s went to %q", host, resp.Header.Get("Location"))
	}
	cks := resp.Cookies()
	if len(cks) != 1 {
		t.Fatalf("/my/login on %s set cookies %v", host, cks)
	}
	// The provider accepts the client and its redirect URI: its login page.
	if resp, body := onHost(t, srv, host, loc.RequestURI()); resp.StatusCode != http.StatusOK {
		t.Fatalf("the provider refused the portal's authorization request: %d\n%s", resp.StatusCode, body)
	}
	return loc, cks[0]
}

// TestPortalSignsInOnTheIssuersOrigin: a production deployment keeps
// publicBaseURL http on a real host (http://ca.example.test: CRLs and
// OCSP) and names the digital ID by its https URL
// (https://id.example.test). The portal then registers its client with
// the redirect URI on the issuer's origin, where its session cookie is
// Secure and __Host-; a browser opening /my/ or /ra/ on the http host is
// sent there, while the CA's files and OCSP stay where they are. The same
// data folder run first as `make run` runs it (http://127.0.0.1:8080)
// shows that setup unchanged, and the change of redirect URI registers
// the portal anew, audited.
func TestPortalSignsInOnTheIssuersOrigin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	const warning = "the citizen portal cannot sign citizens in"

	// As `make run`: publicBaseURL http://127.0.0.1:8080, no issuer.
	srv := startServer(t, dir, nil)
	host := strings.TrimPrefix(srv.base, "http://")
	loc, ck := startPortalLogin(t, srv, host)
	if got := loc.Query().Get("redirect_uri"); got != "http://127.0.0.1:8080/my/callback" {
		t.Errorf("make run: redirect_uri %q", got)
	}
	if ck.Name != "thiqa-session" || ck.Secure {
		t.Errorf("make run: session cookie %q, Secure %t", ck.Name, ck.Secure)
	}
	for _, h := range []string{host, "127.0.0.1:8080", "ca.example.test"} {
		if resp, _ := onHost(t, srv, h, "/my/"); resp.StatusCode != http.StatusOK {
			t.Errorf("make run: /my/ on %s: %d", h, resp.StatusCode)
		}
	}
	srv.stop(t)
	if strings.Contains(srv.stderr.String(), warning) {
		t.Fatalf("make run: %s", srv.stderr.String())
	}

	// Production: publicBaseURL http://ca.example.test, identity.issuer
	// https://id.example.test.
	conf := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, conf)
	for old, repl := range map[string]string{
		"publicBaseURL: http://127.0.0.1:8080":     "publicBaseURL: http://ca.example.test",
		"object=oidc-token-signer\n  issuer: \"\"": "object=oidc-token-signer\n  issuer: https://id.example.test",
	} {
		if !strings.Contains(y, old) {
			t.Fatalf("thiqa.yaml lacks %q", old)
		}
		y = strings.Replace(y, old, repl, 1)
	}
	writeFile(t, conf, y)
	srv = startServer(t, dir, nil)
	if strings.Contains(srv.stderr.String(), warning) {
		t.Fatalf("production: %s", srv.stderr.String())
	}
	loc, ck = startPortalLogin(t, srv, "id.example.test")
	if got := loc.Query().Get("redirect_uri"); got != "https://id.example.test/my/callback" {
		t.Errorf("production: redirect_uri %q", got)
	}
	if ck.Name != "__Host-thiqa-session" || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("production: session cookie %+v", ck)
	}
	// A browser on the http host is sent to the portal's origin.
	for path, want := range map[string]string{
		"/my/":           "https://id.example.test/my/",
		"/my/login":      "https://id.example.test/my/login",
		"/ra/?lang=en":   "https://id.example.test/ra/?lang=en",
		"/my/approve":    "https://id.example.test/my/approve",
		"/my/activity":   "https://id.example.test/my/activity",
		"/ra/search?q=1": "https://id.example.test/ra/search?q=1",
	} {
		resp, _ := onHost(t, srv, "ca.example.test", path)
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want || len(resp.Cookies()) != 0 {
			t.Errorf("production: %s on the http host: %d to %q, cookies %v; want 307 to %q", path, resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), want)
		}
	}
	// A form posted there has sent its fields in the clear: refused, not
	// resent to the origin, and the operator is told.
	req, err := http.NewRequest(http.MethodPost, srv.base+"/my/pin", strings.NewReader("pin=492817&pin2=492817"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "ca.example.test"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Errorf("production: POST /my/pin on the http host: %d to %q, want 403", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitFor(t, 10*time.Second, func() string {
		if !strings.Contains(srv.stderr.String(), "sent over plain http") {
			return "production: no warning of the form sent over plain http:\n" + srv.stderr.String()
		}
		return ""
	})
	// The CA's files, OCSP, the TSA, the front page and the discovery
	// document stay on the http host.
	for _, path := range []string{"/", "/certs/root.crt", "/certs/citizen.crt", "/crl/root.crl", "/crl/citizen.crl",
		"/ocsp/MEIwQDA-MDwwOjAJBgUrDgMCGgUABBQ", "/tsa", "/.well-known/openid-configuration", "/readyz", "/assets/portal.css"} {
		if resp, _ := onHost(t, srv, "ca.example.test", path); resp.StatusCode >= 300 && resp.StatusCode < 400 {
			t.Errorf("production: %s on the http host redirected (%d to %q)", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The first CRLs are published by serve's loop after it is ready: on
	// a busy machine a moment later.
	waitFor(t, 30*time.Second, func() string {
		if resp, _ := onHost(t, srv, "ca.example.test", "/crl/citizen.crl"); resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("production: /crl/citizen.crl on the http host: %d", resp.StatusCode)
		}
		return ""
	})
	srv.stop(t)

	// The new redirect URI registered the portal anew, audited as every
	// registration; the client of make run's stays, unused.
	db, err := sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT actor, object, details FROM audit_log WHERE action = 'oidc.client.add' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var actor, object, details string
		if err := rows.Scan(&actor, &object, &details); err != nil {
			t.Fatal(err)
		}
		got = append(got, actor+" "+object+" "+details)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.Contains(got[0], `"http://127.0.0.1:8080/my/callback"`) || !strings.Contains(got[1], `"https://id.example.test/my/callback"`) ||
		!strings.HasPrefix(got[1], "thiqa-serve thiqa-portal-") {
		t.Fatalf("oidc.client.add records:\n%s", strings.Join(got, "\n"))
	}
	list := mustThiqa(t, nil, "oidc", "client", "list", "--data", dir).stdout
	if !strings.Contains(list, "https://id.example.test/my/callback") {
		t.Fatalf("thiqa oidc client list:\n%s", list)
	}
}
