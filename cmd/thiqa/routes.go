package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
)

// routeMux is the mux of `thiqa serve`. Go's http.ServeMux cannot list its
// patterns, so this one remembers every pattern mounted on it: the route
// table that `thiqa serve --list-routes` prints and that the tests compare
// with the OpenAPI document (api/openapi.yaml). The services mount their
// own routes through it (each declares a Mux interface it satisfies).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

// newRouteMux returns an empty routeMux.
func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle mounts h at pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc mounts f at pattern and records the pattern.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// routeTable lists what a serving answers: each mux pattern as
// "mux<TAB>PATTERN" and each raw prefix (served before the mux, every
// method) as "prefix<TAB>PREFIX", sorted.
func (s *serving) routeTable() []string {
	var out []string
	for _, p := range s.mux.patterns {
		out = append(out, "mux\t"+p)
	}
	for _, p := range slices.Sorted(maps.Keys(s.raw)) {
		out = append(out, "prefix\t"+p)
	}
	slices.Sort(out)
	return out
}

// printRoutes writes the route table, one route a line.
func printRoutes(w io.Writer, s *serving) error {
	for _, r := range s.routeTable() {
		if _, err := fmt.Fprintln(w, r); err != nil {
			return err
		}
	}
	return nil
}
