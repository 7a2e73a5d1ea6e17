package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzAcceptLanguage: any header gives a supported language or none.
func FuzzAcceptLanguage(f *testing.F) {
	for _, s := range []string{"ar", "en-GB,en;q=0.9", "fr;q=1, ar;q=0.1", "*", "en;q=abc, ar;q=", ";;,,", "ar;q=0, en;q=0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := parseAcceptLanguage(h)
		if got != "" && !isLanguage(got) {
			t.Fatalf("parseAcceptLanguage(%q) = %q", h, got)
		}
		if l := pickLanguage("", h); !isLanguage(l) {
			t.Fatalf("pickLanguage(%q) = %q", h, l)
		}
	})
}

// FuzzCleanName: a download name is printable, bounded, without path or
// header-breaking characters, and ends in .pdf.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"contract.pdf", `..\..\evil".pdf`, "a/b/c", "عقد.pdf", "\x00\r\nX-Evil: 1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := cleanName(s)
		if !strings.HasSuffix(n, ".pdf") || strings.ContainsAny(n, "/\\\"\r\n\x00;") || utf8.RuneCountInString(n) > 84 {
			t.Fatalf("cleanName(%q) = %q", s, n)
		}
	})
}

// FuzzSessionCookie: no cookie value finds a session it was not given.
func FuzzSessionCookie(f *testing.F) {
	for _, s := range []string{"", "AAAA", strings.Repeat("A", 43), strings.Repeat("_", 43) + "=", "%00"} {
		f.Add(s)
	}
	s := newSessions(1<<40, 1<<40, 10, time.Now)
	_, real := s.create()
	f.Fuzz(func(t *testing.T, v string) {
		if _, ok := s.get(v); ok && v != real {
			t.Fatalf("cookie %q found a session", v)
		}
	})
}

// FuzzForms posts arbitrary bodies to every form of the pages: nothing
// panics, and without the session's CSRF token every POST is refused
// before reaching the API.
func FuzzForms(f *testing.F) {
	for _, s := range []string{"csrf=x&token=officer", "serial=01&reason=keyCompromise&confirm=yes", "%zz", strings.Repeat("a=b&", 100), "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nx\r\n--x--\r\n"} {
		f.Add("/ra/login", "application/x-www-form-urlencoded", s)
		f.Add("/my/sign", "multipart/form-data; boundary=x", s)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, path, ctype, body string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		r, err := http.NewRequest(http.MethodPost, "http://thiqa.test"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if len(fx.calls) != 0 {
			t.Fatalf("POST %s without a session reached the API: %v", path, fx.calls)
		}
	})
}
