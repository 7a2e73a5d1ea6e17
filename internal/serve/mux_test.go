package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A raw prefix reaches its handler with the path untouched, where the mux
// alone would redirect a path holding "//" (as base64 in GET /ocsp/ may).
func TestRawPrefixesBypassPathCleaning(t *testing.T) {
	var seen string
	raw := map[string]http.Handler{"/ocsp/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.Path
		io.WriteString(w, "raw")
	})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "mux") })
	srv := httptest.NewServer(RawPrefixes(raw, mux))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get(srv.URL + "/ocsp/MEow//SDBG+A==")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "raw" || seen != "/ocsp/MEow//SDBG+A==" {
		t.Fatalf("got %d %q, handler saw %q", resp.StatusCode, body, seen)
	}
	resp, err = client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "mux" {
		t.Fatalf("other paths must still reach the mux, got %q", body)
	}
}

// The route table lists every mux pattern and raw prefix, sorted.
func TestRouteTable(t *testing.T) {
	m := NewMux()
	m.HandleFunc("POST /tsa", func(http.ResponseWriter, *http.Request) {})
	m.Handle("GET /healthz", http.NotFoundHandler())
	got := RouteTable(m, map[string]http.Handler{"/ocsp/": http.NotFoundHandler()})
	want := []string{"mux\tGET /healthz", "mux\tPOST /tsa", "prefix\t/ocsp/"}
	if !slices.Equal(got, want) {
		t.Fatalf("route table %q, want %q", got, want)
	}
}

func TestElsewhereThan(t *testing.T) {
	for _, c := range []struct {
		addr, url string
		want      bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{":8080", "http://localhost:8080", false},
		{"0.0.0.0:443", "https://pki.example", false},
		{"127.0.0.1:9090", "http://127.0.0.1:8080", true},
		{"10.0.0.1:80", "http://pki.example", true},
		{"not an address", "http://pki.example", false},
	} {
		if got := ElsewhereThan(c.addr, c.url); got != c.want {
			t.Errorf("ElsewhereThan(%q, %q) = %v, want %v", c.addr, c.url, got, c.want)
		}
	}
}

// Under /api/ the mux's own 404 and 405 are problems (RFC 9457) naming
// the path, with Allow kept; the routes' answers (even a 404 of their own)
// and every other path's are untouched, and a route can still flush.
func TestAPIMissesAreProblems(t *testing.T) {
	m := NewMux()
	m.HandleFunc("POST /api/v1/seal", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "sealed") })
	m.HandleFunc("GET /api/v1/gone", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "handler's own", http.StatusNotFound) })
	m.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "part")
		if err := http.NewResponseController(w).Flush(); err != nil {
			http.Error(w, "flush: "+err.Error(), http.StatusInternalServerError)
		}
	})
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"POST", "/api/v1/seal", 200, "", "sealed"},
		{"GET", "/api/v1/nope", 404, "application/problem+json", `"detail":"no route of this API answers /api/v1/nope"`},
		{"GET", "/api/v1/seal", 405, "application/problem+json", `"detail":"GET is not allowed on /api/v1/seal (Allow: POST)"`},
		{"GET", "/api/v1/gone", 404, "text/plain; charset=utf-8", "handler's own"},
		{"GET", "/api/v1/stream", 200, "", "part"},
		{"GET", "/elsewhere", 404, "text/plain; charset=utf-8", "404 page not found"},
	} {
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		body := w.Body.String()
		if w.Code != tc.status || (tc.ctype != "" && w.Header().Get("Content-Type") != tc.ctype) || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s: %d %q %s", tc.method, tc.path, w.Code, w.Header().Get("Content-Type"), body)
		}
		if tc.status == 405 && w.Header().Get("Allow") != "POST" {
			t.Errorf("405 without Allow: %v", w.Header())
		}
		if strings.Contains(tc.ctype, "problem") && strings.Contains(body, "page not found") {
			t.Errorf("%s %s: the mux's text leaked: %s", tc.method, tc.path, body)
		}
	}
}

// BenchmarkMuxAPIRoute is the cost of routing a request to an API route,
// whose writer ServeHTTP wraps to tell a miss; compare with
// BenchmarkServeMuxAPIRoute, Go's mux alone.
func BenchmarkMuxAPIRoute(b *testing.B) {
	m := NewMux()
	benchRoutes(m.Handle)
	benchServe(b, m)
}

// BenchmarkServeMuxAPIRoute is BenchmarkMuxAPIRoute on Go's mux alone.
func BenchmarkServeMuxAPIRoute(b *testing.B) {
	m := http.NewServeMux()
	benchRoutes(m.Handle)
	benchServe(b, m)
}

// benchRoutes mounts routes shaped like the server's API.
func benchRoutes(handle func(string, http.Handler)) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, p := range []string{"POST /api/v1/seal", "POST /api/v1/seal/batch", "POST /api/v1/sign", "POST /api/v1/certificates",
		"GET /api/v1/certificates/{serial}", "POST /api/v1/certificates/{serial}/revoke", "POST /api/v1/certificates/{serial}/renew",
		"POST /api/v1/credentials/{id}/pin", "GET /api/v1/whoami", "POST /tsa", "POST /ocsp", "GET /healthz"} {
		handle(p, ok)
	}
}

func benchServe(b *testing.B, h http.Handler) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/certificates/0123456789abcdef/revoke", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// testPages is an ErrorPages that wants the requests carrying "X-Page".
type testPages struct{}

func (testPages) Wants(r *http.Request) bool { return r.Header.Get("X-Page") != "" }
func (testPages) ServeError(w http.ResponseWriter, _ *http.Request, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	io.WriteString(w, "page "+w.Header().Get("Allow"))
}

// The error pages answer only the mux's own 404 and 405, only outside
// /api/ and only for the requests they want; everything else is answered
// as without them, byte for byte.
func TestErrorPages(t *testing.T) {
	build := func(pages ErrorPages) *Mux {
		m := NewMux()
		m.HandleFunc("GET /page", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
		m.HandleFunc("GET /gone", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
		if pages != nil {
			m.SetErrorPages(pages)
		}
		return m
	}
	answer := func(m *Mux, method, path string, page bool) string {
		r := httptest.NewRequest(method, path, nil)
		if page {
			r.Header.Set("X-Page", "1")
		}
		w := httptest.NewRecorder()
		m.ServeHTTP(w, r)
		var b strings.Builder
		w.Result().Header.Write(&b)
		return strconv.Itoa(w.Code) + "\n" + b.String() + "\n" + w.Body.String()
	}
	plain, with := build(nil), build(testPages{})
	for _, c := range []struct {
		method, path string
		page         bool
		want         string // "" for the mux's own answer
	}{
		{"GET", "/nope", true, "404 page "},
		{"POST", "/page", true, "405 page GET, HEAD"},
		{"GET", "/nope", false, ""},
		{"POST", "/page", false, ""},
		{"GET", "/page", true, ""},
		{"GET", "/gone", true, ""}, // a route's own 404
		{"GET", "/api/v1/nope", true, ""},
		{"POST", "/api/v1/nope", false, ""},
	} {
		got, old := answer(with, c.method, c.path, c.page), answer(plain, c.method, c.path, c.page)
		if c.want == "" {
			if got != old {
				t.Errorf("%s %s (page %v): %q, want the mux's own %q", c.method, c.path, c.page, got, old)
			}
			continue
		}
		code, rest, _ := strings.Cut(got, "\n")
		_, body, _ := strings.Cut(rest, "\n\n")
		if code+" "+body != c.want || !strings.Contains(rest, "Content-Type: text/html") || strings.Contains(rest, "nosniff") {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// NotFound answers like the mux's own 404: the error page when it wants
// the request (never under /api/), Go's plain text otherwise.
func TestMuxNotFound(t *testing.T) {
	for _, c := range []struct {
		path  string
		pages ErrorPages
		page  bool
		want  string
	}{
		{"/verify/x", testPages{}, true, "page "},
		{"/verify/x", testPages{}, false, "404 page not found\n"},
		{"/verify/x", nil, true, "404 page not found\n"},
		{"/api/v1/x", testPages{}, true, "404 page not found\n"},
	} {
		m := NewMux()
		m.SetErrorPages(c.pages)
		r := httptest.NewRequest("GET", c.path, nil)
		if c.page {
			r.Header.Set("X-Page", "1")
		}
		w := httptest.NewRecorder()
		m.NotFound(w, r)
		if w.Code != http.StatusNotFound || w.Body.String() != c.want {
			t.Errorf("%s (pages %v, wanted %v): %d %q, want %q", c.path, c.pages != nil, c.page, w.Code, w.Body, c.want)
		}
	}
}
