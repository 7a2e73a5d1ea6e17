package portal

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
)

// originFixture is the portal of a production deployment whose
// publicBaseURL stays http for CRLs and OCSP (http://ca.example.test)
// while browsers use the digital ID's https origin.
func originFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, func(o *Options) {
		o.Secure, o.Origin, o.RedirectHosts = true, "https://id.example.test", []string{"ca.example.test"}
	})
}

// onHost sends one request with the given Host header.
func (f *fixture) onHost(method, host, path string, form url.Values) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Host = host
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// TestPagesOfASessionMoveToTheOrigin: a browser that opens the citizen
// portal or the officer console on publicBaseURL's http host is sent to
// the same path on the portal's https origin before any session starts,
// so that the session cookie and the digital ID's callback are on one
// host.
func TestPagesOfASessionMoveToTheOrigin(t *testing.T) {
	f := originFixture(t)
	for _, c := range []struct{ method, host, path, want string }{
		{"GET", "ca.example.test", "/my/", "https://id.example.test/my/"},
		{"GET", "CA.example.test:80", "/my/login", "https://id.example.test/my/login"},
		{"GET", "ca.example.test", "/my/activity?lang=ar", "https://id.example.test/my/activity?lang=ar"},
		{"GET", "ca.example.test", "/my/approve", "https://id.example.test/my/approve"},
		{"GET", "ca.example.test", "/ra/?lang=en", "https://id.example.test/ra/?lang=en"},
		{"GET", "ca.example.test", "/ra/certificate?serial=0a", "https://id.example.test/ra/certificate?serial=0a"},
		{"HEAD", "ca.example.test", "/my/", "https://id.example.test/my/"},
	} {
		w := f.onHost(c.method, c.host, c.path, nil)
		if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != c.want {
			t.Errorf("%s %s on %s: %d to %q, want 307 to %q", c.method, c.path, c.host, w.Code, w.Header().Get("Location"), c.want)
		}
		if ck := w.Result().Cookies(); len(ck) != 0 {
			t.Errorf("%s %s on %s set %v", c.method, c.path, c.host, ck)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("%s %s on %s: headers %v", c.method, c.path, c.host, w.Header())
		}
	}
	if len(f.audit.actions()) != 0 || len(f.calls) != 0 {
		t.Fatalf("a redirected request acted: audit %v, calls %v", f.audit.actions(), f.calls)
	}
	// On the origin's host the pages are served, the session cookie
	// Secure and __Host-.
	w := f.onHost("GET", "id.example.test", "/ra/", nil)
	if ck := w.Result().Cookies(); w.Code != http.StatusOK || len(ck) != 1 || ck[0].Name != "__Host-thiqa-session" || !ck[0].Secure {
		t.Fatalf("/ra/ on the origin: %d, cookies %+v", w.Code, w.Result().Cookies())
	}
	// The front page and the style sheet are served on any host; so is a
	// host the portal was not told of (a health check by address, a proxy
	// that rewrites Host): never a redirect loop.
	for _, c := range []struct{ host, path string }{
		{"ca.example.test", "/"}, {"ca.example.test", "/assets/portal.css"},
		{"10.0.0.5:8080", "/my/"}, {"127.0.0.1:8080", "/ra/"}, {"ca.example.test:8080", "/my/"},
	} {
		if w := f.onHost("GET", c.host, c.path, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s on %s: %d, want 200", c.path, c.host, w.Code)
		}
	}
}

// TestNoOriginNoRedirect: without an origin (make run: everything on
// http://127.0.0.1:8080) the pages answer on every host as before.
func TestNoOriginNoRedirect(t *testing.T) {
	f := newFixture(t)
	for _, host := range []string{"127.0.0.1:8080", "ca.example.test"} {
		w := f.onHost("GET", host, "/my/", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("/my/ on %s: %d", host, w.Code)
		}
	}
}

// TestOriginOptionsChecked: an origin with a path, or a redirect host
// that is the origin's own (a loop), is refused at construction.
func TestOriginOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{Origin: "https://id.example.test/idp"},
		{Origin: "https://id.example.test/"},
		{Origin: "id.example.test"},
		{Origin: "https://id.example.test", RedirectHosts: []string{"id.example.test"}},
		{RedirectHosts: []string{"ca.example.test"}},
	} {
		o.API, o.Authenticate, o.Audit = http.NotFoundHandler(), func(*http.Request) (*auth.Principal, error) { return nil, nil }, &memAudit{}
		if _, err := New(o); err == nil {
			t.Errorf("New accepted origin %q with redirect hosts %v", o.Origin, o.RedirectHosts)
		}
	}
}

// TestFormsOnThePlainHostAreRefused: a form posted to /my/… or /ra/… on
// publicBaseURL's plain-http host (a tab opened before the portal moved,
// a link of someone else's) has already sent its fields, a PIN, an
// activation code or an officer's token, in the clear. It is refused with
// the error page, nothing is done, and the browser is not sent on with it
// to the origin (a 307 would resend the fields and make them work). The
// operator is warned in the log, without the fields.
func TestFormsOnThePlainHostAreRefused(t *testing.T) {
	var logs bytes.Buffer
	f := newFixtureWith(t, func(o *Options) {
		o.Secure, o.Origin, o.RedirectHosts = true, "https://id.example.test", []string{"ca.example.test"}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for _, c := range []struct {
		path, back string
		form       url.Values
	}{
		{"/ra/login", "https://id.example.test/ra/", url.Values{"token": {"officer"}}},
		{"/my/pin", "https://id.example.test/my/", url.Values{"pin": {"492817"}, "pin2": {"492817"}, "csrf": {"c5rf-t0ken-of-a-stale-tab"}}},
		{"/my/pin/activate", "https://id.example.test/my/", url.Values{"code": {"7Q4K-9ZP2"}, "pin": {"492817"}}},
		{"/my/sign/approve", "https://id.example.test/my/", url.Values{"pin": {"492817"}}},
		{"/my/approve/login", "https://id.example.test/my/approve", url.Values{"token": {"phone-key"}}},
		{"/ra/pin/reset?lang=ar", "https://id.example.test/ra/", url.Values{"credential": {"c1"}}},
	} {
		w := f.onHost("POST", "ca.example.test", c.path, c.form)
		body := w.Body.String()
		if w.Code != http.StatusForbidden || w.Header().Get("Location") != "" {
			t.Errorf("POST %s on the http host: %d to %q, want 403 without a redirect", c.path, w.Code, w.Header().Get("Location"))
		}
		if len(w.Result().Cookies()) != 0 || w.Header().Get("Content-Security-Policy") != CSP || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("POST %s on the http host: headers %v", c.path, w.Header())
		}
		if !strings.Contains(body, `href="`+c.back+`"`) {
			t.Errorf("POST %s on the http host: the page does not lead to %s:\n%s", c.path, c.back, body)
		}
		for _, v := range c.form {
			if strings.Contains(body, v[0]) || strings.Contains(logs.String(), v[0]) {
				t.Errorf("POST %s on the http host: a field's value %q is echoed", c.path, v[0])
			}
		}
	}
	if en := f.onHost("POST", "ca.example.test", "/my/pin?lang=en", url.Values{"pin": {"1"}}); !strings.Contains(en.Body.String(), "unencrypted") {
		t.Errorf("the refusal does not say why:\n%s", en.Body.String())
	}
	if ar := f.onHost("POST", "ca.example.test", "/my/pin?lang=ar", url.Values{"pin": {"1"}}); !strings.Contains(ar.Body.String(), "غير مشفّر") {
		t.Errorf("the Arabic refusal does not say why:\n%s", ar.Body.String())
	}
	// Each refusal is audited (anonymous: no session crosses to the plain
	// host), and nothing else happened.
	if got := f.audit.actions(); len(got) != 8 || slices.ContainsFunc(got, func(a string) bool { return a != ActionPlainHTTP+":refused:anonymous" }) ||
		len(f.calls) != 0 || f.p.ses.sweep() != 0 {
		t.Fatalf("a refused form acted or went unrecorded: audit %v, calls %v", got, f.calls)
	}
	for _, e := range f.audit.entries {
		if d := fmt.Sprint(e.Details); strings.Contains(d, "492817") || strings.Contains(d, "7Q4K") || e.Object == "" {
			t.Fatalf("the refusal's record %+v", e)
		}
	}
	if !strings.Contains(logs.String(), "plain http") || !strings.Contains(logs.String(), "path=/ra/login") {
		t.Errorf("the operator is not warned:\n%s", logs.String())
	}
	// On the origin a form goes to its page as ever (here without a
	// session: the CSRF check answers).
	if w := f.onHost("POST", "id.example.test", "/ra/login?lang=en", url.Values{"token": {"officer"}}); strings.Contains(w.Body.String(), "unencrypted") || len(f.audit.actions()) != 9 {
		t.Fatalf("POST /ra/login on the origin: %d, audit %v:\n%s", w.Code, f.audit.actions(), w.Body.String())
	}
}

// TestRedirectStaysOnTheOrigin: whatever the request line (a path that
// starts with // or \\, encoded slashes, an absolute-form URI naming
// another host, an opaque URI, user info, a query with @ or \\, encoded
// CR LF), the 307 names the configured origin's scheme and host, and the
// path is a path there.
func TestRedirectStaysOnTheOrigin(t *testing.T) {
	f := originFixture(t)
	// Handed to the route directly, as a wrapper that bypasses the mux's
	// path cleaning would.
	var route http.Handler
	f.p.Register(muxFunc(func(pattern string, h http.Handler) {
		if pattern == "GET /my/{$}" {
			route = h
		}
	}))
	for _, u := range []*url.URL{
		{Scheme: "http", Opaque: "//evil.example/my/"},
		{Scheme: "http", Host: "evil.example", Path: "/my/"},
		{Scheme: "http", User: url.User("id.example.test"), Host: "evil.example", Path: "/my/"},
		{Path: "//evil.example/my/"},
		{Path: "\\\\evil.example/my/"},
		{Path: "my/", RawQuery: "a=@evil.example"},
		{Path: "/my/", RawQuery: "next=//evil.example&x=%0d%0aLocation:%20http://evil.example"},
	} {
		r := httptest.NewRequest("GET", "/my/", nil)
		r.URL, r.Host = u, "ca.example.test"
		w := httptest.NewRecorder()
		route.ServeHTTP(w, r)
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusTemporaryRedirect || err != nil || loc.Scheme != "https" || loc.Host != "id.example.test" || loc.User != nil || loc.Opaque != "" {
			t.Errorf("%#v: %d to %q, want 307 to https://id.example.test/…", u, w.Code, w.Header().Get("Location"))
		}
	}
	// Through a server, the request lines an attacker can send.
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	for _, line := range []string{
		"GET //evil.example/my/ HTTP/1.1\r\nHost: ca.example.test",
		"GET http://ca.example.test//evil.example/my/ HTTP/1.1\r\nHost: ca.example.test",
		"GET http://ca.example.test/my/ HTTP/1.1\r\nHost: evil.example",
		"GET http:/my/ HTTP/1.1\r\nHost: ca.example.test",
		"GET http:%2F%2Fevil.example/my/ HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/%2F%2Fevil.example HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/activity?\\\\evil.example HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/activity?@evil.example HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/activity?a=%0d%0aLocation:%20http://evil.example HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/activity?a=\xff HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/../ra/ HTTP/1.1\r\nHost: ca.example.test",
		"GET /my/ HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: ca.example.test",
		"GET /my/ HTTP/1.1\r\nHost: ca.example.test\r\nX-Forwarded-Host: evil.example",
	} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(line + "\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		resp.Body.Close()
		if l := resp.Header.Get("Location"); l != "" {
			if loc, err := url.Parse(l); err != nil || (loc.Host != "" && loc.Host != "id.example.test") || strings.HasPrefix(l, "//") || strings.Contains(l, "\n") {
				t.Errorf("%q: %d to %q", line, resp.StatusCode, l)
			}
		}
	}
}

// muxFunc is a Mux of one function.
type muxFunc func(pattern string, h http.Handler)

func (m muxFunc) Handle(pattern string, h http.Handler) { m(pattern, h) }
