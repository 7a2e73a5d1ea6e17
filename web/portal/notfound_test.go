package portal

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/serve"
)

// browserAccept is what a browser sends when it opens a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// notFoundMuxes are the server's mux with the portal's routes, with and
// without the portal as its error pages.
func notFoundMuxes(t *testing.T) (with, without *serve.Mux) {
	t.Helper()
	p, err := New(Options{API: http.NotFoundHandler(), Audit: &memAudit{}, Links: Links{Verify: "/verify"},
		Authenticate: func(*http.Request) (*auth.Principal, error) { return nil, auth.ErrInvalidCredentials }})
	if err != nil {
		t.Fatal(err)
	}
	with, without = serve.NewMux(), serve.NewMux()
	p.Register(with)
	p.Register(without)
	with.SetErrorPages(p)
	return with, without
}

// dump is an answer as bytes: status, headers, body.
func dump(h http.Handler, method, path string, hdr ...string) (*httptest.ResponseRecorder, string) {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var b strings.Builder
	_ = w.Result().Header.Write(&b)
	return w, strconv.Itoa(w.Code) + "\n" + b.String() + "\n" + w.Body.String()
}

// A browser that opens a path nothing serves gets a 404 page in the
// portal's look, in its language and the other one, with the way back,
// the pages' security headers and no caching; a method the page does not
// take is a 405 page that keeps Allow.
func TestNotFoundPage(t *testing.T) {
	with, _ := notFoundMuxes(t)
	for _, c := range []struct {
		method, path, lang string
		status             int
		title, dir, other  string
		area               string
	}{
		{"GET", "/foo", "", 404, "<title>خطأ: الصفحة غير موجودة — ثقة</title>", "rtl", `lang="en" dir="ltr"`, ""},
		{"GET", "/foo", "en", 404, "<title>Error: Page not found — Thiqa</title>", "ltr", `lang="ar" dir="rtl"`, ""},
		{"GET", "/my/nope", "ar", 404, "<title>خطأ: الصفحة غير موجودة — ثقة</title>", "rtl", `lang="en" dir="ltr"`, `href="/my/" aria-current="page"`},
		{"GET", "/ra/nope?x=1", "en", 404, "<title>Error: Page not found — Thiqa</title>", "ltr", `lang="ar" dir="rtl"`, `href="/ra/" aria-current="page"`},
		{"HEAD", "/nowhere/", "en", 404, "", "", "", ""},
		{"POST", "/", "en", 405, "<title>Error: This page cannot be opened this way — Thiqa</title>", "ltr", `lang="ar" dir="rtl"`, ""},
		{"GET", "/my/logout", "en", 405, "<title>Error: This page cannot be opened this way — Thiqa</title>", "ltr", `lang="ar" dir="rtl"`, `href="/my/" aria-current="page"`},
	} {
		w, all := dump(with, c.method, c.path, "Accept", browserAccept, "Accept-Language", c.lang)
		h, body := w.Result().Header, w.Body.String()
		name := c.method + " " + c.path + " (" + c.lang + ")"
		if w.Code != c.status || h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Content-Security-Policy") != CSP ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: got\n%s", name, all)
			continue
		}
		if c.status == 405 && h.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", name)
		}
		if c.method == "HEAD" {
			continue
		}
		for _, want := range []string{`<html lang="` + map[string]string{"rtl": "ar", "ltr": "en"}[c.dir] + `" dir="` + c.dir + `">`, c.title,
			`<section ` + c.other, `role="alert" id="error"`, `href="/"`, `href="/verify"`, `href="/assets/portal.css"`, c.area} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: no %s in\n%s", name, want, body)
			}
		}
		if strings.Contains(body, "page not found\n") {
			t.Errorf("%s: the mux's text leaked into the page", name)
		}
	}
}

// Everything that is not a browser asking for a page, and every path of
// the API and the protocols, keeps the answer it had, byte for byte: the
// plain-text 404 and 405, the API's problems.
func TestNotFoundKeepsOtherAnswers(t *testing.T) {
	with, without := notFoundMuxes(t)
	for _, c := range []struct{ method, path, accept string }{
		{"GET", "/foo", ""},
		{"GET", "/foo", "application/json"},
		{"GET", "/foo", "*/*"},
		{"GET", "/foo", "text/html;q=0"},
		{"GET", "/my/nope", "application/json"},
		{"POST", "/", ""},
		{"GET", "/my/logout", "*/*"},
		{"GET", "/api/v1/nope", ""},
		{"GET", "/api/v1/nope", browserAccept},
		{"DELETE", "/api/v1/nope", "application/json"},
		{"GET", "/oidc/nope", browserAccept},
		{"GET", "/.well-known/est/nope", browserAccept},
		{"GET", "/csc/v2/nope", browserAccept},
		{"GET", "/ocsp/nope", browserAccept},
		{"GET", "/crl/nope.crl", browserAccept},
		{"GET", "/certs/nope.crt", browserAccept},
		{"POST", "/tsa/x", browserAccept},
		{"GET", "/", browserAccept},
	} {
		_, got := dump(with, c.method, c.path, "Accept", c.accept)
		_, want := dump(without, c.method, c.path, "Accept", c.accept)
		if got != want {
			t.Errorf("%s %s (Accept %q):\n%s\nwant\n%s", c.method, c.path, c.accept, got, want)
		}
	}
	_, api := dump(with, "GET", "/api/v1/nope", "Accept", browserAccept)
	if !strings.HasPrefix(api, "404\nContent-Type: application/problem+json") {
		t.Errorf("GET /api/v1/nope: %s", api)
	}
	_, plain := dump(with, "GET", "/foo", "Accept", "application/json")
	if plain != "404\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\n404 page not found\n" {
		t.Errorf("GET /foo as JSON: %q", plain)
	}
}

func TestAcceptsHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		browserAccept: true, "text/html": true, "TEXT/HTML; charset=utf-8": true, "application/xhtml+xml": true,
		"text/html;q=0": false, "text/html;q=0.000": false, "text/html;q=0.5": true, "": false, "*/*": false,
		"application/json": false, "application/problem+json, text/plain": false, "text/htmlx": false, ";;,": false,
	} {
		if got := acceptsHTML([]string{accept}); got != want {
			t.Errorf("acceptsHTML(%q) = %v", accept, got)
		}
	}
}
