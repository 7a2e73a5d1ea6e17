// Package serve is the process plumbing of an HTTP server: a mux that
// remembers its routes, path prefixes served before the mux, and Run, which
// serves on listeners opened beforehand, runs the background loops while
// serving, and stops all of it within a bound when told to.
package serve

import (
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/internal/problem"
)

// Mux is an http.ServeMux that remembers every pattern mounted on it (Go's
// mux cannot list them): the route table a server prints and tests compare
// with an API description.
type Mux struct {
	*http.ServeMux
	patterns []string
	pages    ErrorPages
}

// ErrorPages answer a person in place of the mux's own plain-text 404 (no
// route for the path) and 405 (the path takes another method) outside
// /api/: a page in the site's look instead of "404 page not found". Only
// the requests it Wants are given to it; every other one gets the mux's
// answer unchanged. Answers of the routes themselves are never replaced.
type ErrorPages interface {
	// Wants reports whether r is one for the pages (a browser asking for
	// HTML, for a path that is not a protocol's).
	Wants(r *http.Request) bool
	// ServeError answers r with the page for status (404 or 405); the
	// mux's Allow header of a 405 is already set on w.
	ServeError(w http.ResponseWriter, r *http.Request, status int)
}

// SetErrorPages makes p answer the mux's own 404 and 405 outside /api/
// (see ErrorPages); nil restores the mux's plain-text answers.
func (m *Mux) SetErrorPages(p ErrorPages) { m.pages = p }

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle mounts h at pattern and records the pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// NotFound answers r as the mux answers a path no route serves: the error
// page when the error pages want r (SetErrorPages), else Go's plain-text
// 404. For a route's own "no such thing under my path" (GET /verify/x).
func (m *Mux) NotFound(w http.ResponseWriter, r *http.Request) {
	if m.pages != nil && !strings.HasPrefix(r.URL.Path, "/api/") && m.pages.Wants(r) {
		m.pages.ServeError(w, r, http.StatusNotFound)
		return
	}
	http.NotFound(w, r)
}

// ServeHTTP routes r. A request under /api/ that no route answers gets an
// RFC 9457 problem, as every answer of the API does: 404 for an unknown
// path, 405 (with Allow) for a method the path does not take, instead of
// Go's plain-text ones. Elsewhere the error pages (SetErrorPages), when
// set, answer the requests they want in place of those plain-text ones.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		w = &problemWriter{ResponseWriter: w, r: r}
	case m.pages != nil && m.pages.Wants(r):
		w = &pageWriter{ResponseWriter: w, r: r, pages: m.pages}
	}
	m.ServeMux.ServeHTTP(w, r)
}

// pageWriter turns the mux's own 404 and 405 into the error pages, as
// problemWriter does into problems.
type pageWriter struct {
	http.ResponseWriter
	r     *http.Request
	pages ErrorPages
	// done is set once the page is written: the mux's text is dropped.
	done bool
}

// WriteHeader writes the error page in place of the mux's own 404 or 405.
func (p *pageWriter) WriteHeader(code int) {
	if (code != http.StatusNotFound && code != http.StatusMethodNotAllowed) || p.done || p.r.Pattern != "" {
		p.ResponseWriter.WriteHeader(code)
		return
	}
	p.done = true
	h := p.Header()
	h.Del("Content-Type")
	h.Del("X-Content-Type-Options")
	p.pages.ServeError(p.ResponseWriter, p.r, code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *pageWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Write drops the mux's text once the page is written.
func (p *pageWriter) Write(b []byte) (int, error) {
	if p.done {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

// problemWriter turns the mux's own error answers into problems. The mux
// sets r.Pattern to the route it chose before calling it, and leaves it
// empty when it answers itself (404, 405).
type problemWriter struct {
	http.ResponseWriter
	r *http.Request
	// done is set once the problem is written: the mux's text is dropped.
	done bool
}

// WriteHeader writes a problem in place of the mux's own error status.
func (p *problemWriter) WriteHeader(code int) {
	if code < http.StatusBadRequest || p.done || p.r.Pattern != "" {
		p.ResponseWriter.WriteHeader(code)
		return
	}
	p.done = true
	detail := "no route of this API answers " + p.r.URL.Path
	if code == http.StatusMethodNotAllowed {
		detail = p.r.Method + " is not allowed on " + p.r.URL.Path + " (Allow: " + p.Header().Get("Allow") + ")"
	}
	problem.Write(p.ResponseWriter, problem.Details{Status: code, Detail: detail, Instance: p.r.URL.Path})
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Write drops the mux's text once the problem is written.
func (p *problemWriter) Write(b []byte) (int, error) {
	if p.done {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

// HandleFunc mounts f at pattern and records the pattern.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// RouteTable lists what m and the raw prefixes (RawPrefixes) answer: each
// mux pattern as "mux<TAB>PATTERN" and each raw prefix (every method) as
// "prefix<TAB>PREFIX", sorted.
func RouteTable(m *Mux, raw map[string]http.Handler) []string {
	var out []string
	for _, p := range m.patterns {
		out = append(out, "mux\t"+p)
	}
	for _, p := range slices.Sorted(maps.Keys(raw)) {
		out = append(out, "prefix\t"+p)
	}
	slices.Sort(out)
	return out
}

// RawPrefixes sends requests whose path starts with one of the prefixes
// straight to its handler, and everything else to next: for paths a mux
// must not clean (base64 in a path may hold "//", which the mux would
// redirect).
func RawPrefixes(raw map[string]http.Handler, next http.Handler) http.Handler {
	if len(raw) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, h := range raw {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ElsewhereThan reports whether the listen address addr ("host:port")
// differs from the host and port of publicURL, where clients are told to
// find the server. An address listening on every interface matches any
// host; what cannot be parsed is not reported.
func ElsewhereThan(addr, publicURL string) bool {
	u, err := url.Parse(publicURL)
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	wantPort := u.Port()
	if wantPort == "" {
		wantPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip := net.ParseIP(host)
	everywhere := ip != nil && ip.IsUnspecified()
	return port != wantPort || (host != "" && host != u.Hostname() && !everywhere)
}
