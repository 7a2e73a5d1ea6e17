package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/api"
)

// documentedOperations returns "METHOD /path" for every operation of the
// OpenAPI document.
func documentedOperations(t *testing.T) []string {
	t.Helper()
	raw, err := api.Document("")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// routeServes reports whether one line of the route table ("mux\tMETHOD
// /pattern" or "prefix\t/prefix") serves the documented operation
// "METHOD /path".
func routeServes(route, op string) bool {
	kind, pattern, _ := strings.Cut(route, "\t")
	method, path, _ := strings.Cut(op, " ")
	if kind == "prefix" {
		return strings.HasPrefix(path, pattern)
	}
	pm, pp, ok := strings.Cut(pattern, " ")
	if !ok {
		pm, pp = "", pattern
	}
	if pm != "" && pm != method {
		return false
	}
	if exact, ok := strings.CutSuffix(pp, "{$}"); ok { // "/my/{$}": that path only
		return exact == path
	}
	if strings.HasSuffix(pp, "/") { // a subtree
		return strings.HasPrefix(path, pp)
	}
	return pp == path
}

// The route table of a real `thiqa serve` (every service on) and the
// OpenAPI document name the same endpoints: a route nobody documented, or
// a documented path nothing serves, fails here. The server answers the
// document at GET /openapi.json with its publicBaseURL as server.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	var routes []string
	for _, l := range strings.Split(strings.TrimSpace(mustThiqa(t, nil, "serve", "--data", dir, "--list-routes").stdout), "\n") {
		if strings.HasPrefix(l, "mux\t") || strings.HasPrefix(l, "prefix\t") {
			routes = append(routes, l)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("thiqa serve --list-routes printed only %d routes:\n%s", len(routes), strings.Join(routes, "\n"))
	}
	ops := documentedOperations(t)
	for _, r := range routes {
		if !slices.ContainsFunc(ops, func(op string) bool { return routeServes(r, op) }) {
			t.Errorf("route %q is served but not documented in api/openapi.yaml", r)
		}
	}
	for _, op := range ops {
		if !slices.ContainsFunc(routes, func(r string) bool { return routeServes(r, op) }) {
			t.Errorf("%s is documented in api/openapi.yaml but not served", op)
		}
	}

	srv := startServer(t, dir, nil)
	code, hdr, body := srv.get(t, api.Path, "")
	want, err := api.Document("http://127.0.0.1:8080") // the default publicBaseURL
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || string(body) != string(want) {
		t.Fatalf("GET %s: %d %s, %d bytes (want the document with the publicBaseURL as server)", api.Path, code, hdr.Get("Content-Type"), len(body))
	}
}

// The route matching itself: methods, subtrees and raw prefixes.
func TestRouteServes(t *testing.T) {
	for _, c := range []struct {
		route, op string
		want      bool
	}{
		{"mux\tGET /healthz", "GET /healthz", true},
		{"mux\tGET /healthz", "POST /healthz", false},
		{"mux\tGET /api/v1/certificates/{serial}", "GET /api/v1/certificates/{serial}", true},
		{"mux\tGET /verify/", "GET /verify/{asset}", true},
		{"mux\tGET /verify", "GET /verify/{asset}", false},
		{"prefix\t/ocsp/", "GET /ocsp/{request}", true},
		{"prefix\t/tsa", "POST /tsa", true},
		{"prefix\t/ocsp/", "POST /ocsp", false},
		{"mux\tGET /{$}", "GET /", true},
		{"mux\tGET /{$}", "GET /healthz", false},
		{"mux\tGET /my/{$}", "GET /my/", true},
		{"mux\tGET /my/{$}", "GET /my/sign", false},
	} {
		if got := routeServes(c.route, c.op); got != c.want {
			t.Errorf("routeServes(%q, %q) = %v", c.route, c.op, got)
		}
	}
}
