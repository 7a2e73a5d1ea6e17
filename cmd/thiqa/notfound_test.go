package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// A person's browser that opens an address nothing serves on a real
// `thiqa serve` gets the portal's 404 page (language, direction, a title
// naming the error, the way back); an API client, or a request without
// Accept, gets the plain-text answer it always had, and the API its
// problem. No browser needed.
func TestNotFoundPageServed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	srv := startServer(t, dir, nil)
	ask := func(method, path string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no Accept added, no redirect followed
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, c := range []struct{ path, lang, head, title string }{
		{"/foo", "", `<html lang="ar" dir="rtl">`, "<title>خطأ: الصفحة غير موجودة — ثقة</title>"},
		{"/my/nope", "en", `<html lang="en" dir="ltr">`, "<title>Error: Page not found — Thiqa</title>"},
		{"/ra/nope", "ar", `<html lang="ar" dir="rtl">`, "<title>خطأ: الصفحة غير موجودة — ثقة</title>"},
		{"/verify/nope", "en", `<html lang="en" dir="ltr">`, "<title>Error: Page not found — Thiqa</title>"},
	} {
		code, h, body := ask("GET", c.path, "Accept", browser, "Accept-Language", c.lang)
		if code != http.StatusNotFound || h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "no-store" ||
			!strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(body, c.head) || !strings.Contains(body, c.title) || !strings.Contains(body, `href="/verify"`) {
			t.Errorf("GET %s from a browser: %d %v\n%s", c.path, code, h, body)
		}
	}
	if code, h, body := ask("POST", "/", "Accept", browser, "Accept-Language", "en"); code != http.StatusMethodNotAllowed ||
		h.Get("Allow") != "GET, HEAD" || !strings.Contains(body, "<title>Error: This page cannot be opened this way — Thiqa</title>") {
		t.Errorf("POST / from a browser: %d %v\n%s", code, h, body)
	}
	for _, accept := range []string{"", "application/json"} {
		for _, path := range []string{"/foo", "/my/nope", "/verify/nope"} {
			code, h, body := ask("GET", path, "Accept", accept)
			if code != http.StatusNotFound || h.Get("Content-Type") != "text/plain; charset=utf-8" || body != "404 page not found\n" {
				t.Errorf("GET %s (Accept %q): %d %v %q, want Go's plain 404", path, accept, code, h, body)
			}
		}
		code, h, body := ask("GET", "/api/v1/nope", "Accept", accept)
		if code != http.StatusNotFound || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"status":404`) {
			t.Errorf("GET /api/v1/nope (Accept %q): %d %v %s", accept, code, h, body)
		}
	}
	if code, h, _ := ask("GET", "/api/v1/nope", "Accept", browser); code != http.StatusNotFound || h.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /api/v1/nope from a browser: %d %v", code, h)
	}
}
