package main

import (
	"io"
	"net/http"
	"net/http/httptest"
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
	srv := httptest.NewServer(rawPrefixes(raw, mux))
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
