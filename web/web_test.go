package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHandler(t *testing.T) {
	h := Handler(Options{APIPath: "/api/v1/verify", MaxUploadBytes: 64 << 20})
	for path, ctype := range map[string]string{
		"/verify":         "text/html; charset=utf-8",
		"/verify/":        "text/html; charset=utf-8",
		"/verify/app.js":  "text/javascript; charset=utf-8",
		"/verify/app.css": "text/css; charset=utf-8",
	} {
		rec := get(t, h, path)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ctype || rec.Header().Get("Content-Security-Policy") != CSP ||
			rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Body.Len() < 500 {
			t.Fatalf("%s: %d %v (%d bytes)", path, rec.Code, rec.Header(), rec.Body.Len())
		}
		// Nothing is loaded from elsewhere: no absolute or protocol-relative URLs in src/href/url(), no @import.
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`).Find(rec.Body.Bytes()); m != nil {
			t.Fatalf("%s refers to an external resource: %s", path, m)
		}
	}
	page := get(t, h, "/verify").Body.String()
	for _, want := range []string{
		`<html lang="ar" dir="rtl"`, `name="viewport" content="width=device-width, initial-scale=1"`,
		`data-api="/api/v1/verify"`, `data-max="67108864"`, "(up to 64 MiB)", `lang="en"`, "تحقّق", "Verify",
		`<script src="/verify/app.js" defer></script>`, `enctype="multipart/form-data"`,
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<style") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Fatal("inline script, style or event handler: the CSP forbids them")
	}
	js := get(t, h, "/verify/app.js").Body.String()
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "eval(") {
		t.Fatal("app.js writes HTML or evaluates strings; report values must go through textContent")
	}
	// Refusals are said in both languages: 429 (rate) and 503 (too many
	// verifications in progress).
	for _, want := range []string{"resp.status === 429", `status("busy"`, "resp.status === 503", `status("overloaded"`,
		"overloaded: [\"الخدمة مشغولة", "The service is busy with other verifications"} {
		if !strings.Contains(js, want) {
			t.Fatalf("app.js lacks %q", want)
		}
	}
	for _, p := range []string{"/verify/other", "/verify/static/app.js", "/verify/app.js/x"} {
		if rec := get(t, h, p); rec.Code != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", p, rec.Code)
		}
	}
	if !strings.Contains(CSP, "default-src 'none'") || strings.Contains(CSP, "unsafe-inline") {
		t.Fatalf("CSP too loose: %s", CSP)
	}
}

// A path under /verify/ that is none of the page's is answered by
// Options.NotFound (the site's 404 page for a browser).
func TestHandlerNotFound(t *testing.T) {
	h := Handler(Options{APIPath: "/api/v1/verify", NotFound: func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("the site's page"))
	}})
	if rec := get(t, h, "/verify/other"); rec.Code != http.StatusNotFound || rec.Body.String() != "the site's page" {
		t.Fatalf("/verify/other: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, h, "/verify/app.js"); rec.Code != http.StatusOK {
		t.Fatalf("/verify/app.js: %d", rec.Code)
	}
}
