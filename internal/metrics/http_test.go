package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// TestHTTPRoutes drives a mux wrapped like `thiqa serve` wraps it (a raw
// prefix handler in front) and checks the route and status-class labels:
// the mux pattern, the prefix, or "other"; never the path.
func TestHTTPRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewHTTP(reg, "/ocsp/", "/tsa")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/certificates/{serial}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("serial") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok")) // implicit 200
	})
	mux.HandleFunc("POST /api/v1/seal", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /empty", func(http.ResponseWriter, *http.Request) {}) // nothing written: 200
	mux.HandleFunc("POST /panics", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	raw := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ocsp/") || strings.HasPrefix(r.URL.Path, "/tsa") {
			raw.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(m.Handler(front))
	defer srv.Close()

	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/v1/certificates/0123"},
		{"GET", "/api/v1/certificates/4567"},
		{"GET", "/api/v1/certificates/missing"},
		{"POST", "/api/v1/seal"},
		{"GET", "/empty"},
		{"POST", "/panics"},
		{"GET", "/ocsp/MEMwQTA%2FMD0wOzAJBgUrDgMCGgUABBQ"},
		{"POST", "/tsa"},
		{"GET", "/no/such/path/with-a-civil-number-12345678"},
		{"DELETE", "/api/v1/seal"},
	} {
		req, _ := http.NewRequest(rq.method, srv.URL+rq.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			if rq.path == "/panics" {
				continue // the server drops the connection
			}
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	want := map[[2]string]float64{
		{"GET /api/v1/certificates/{serial}", "2xx"}: 2,
		{"GET /api/v1/certificates/{serial}", "4xx"}: 1,
		{"POST /api/v1/seal", "5xx"}:                 1,
		{"GET /empty", "2xx"}:                        1,
		{"POST /panics", "5xx"}:                      1,
		{"/ocsp/", "2xx"}:                            1,
		{"/tsa", "2xx"}:                              1,
		{RouteOther, "4xx"}:                          2, // 404 and 405
	}
	for k, n := range want {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(k[0], k[1])); got != n {
			t.Errorf("requests{route=%q,code_class=%q} = %v, want %v", k[0], k[1], got, n)
		}
	}
	// Every series is one of the routes above: no path leaked into a label.
	out, err := testutil.CollectAndFormat(m.requests, expfmt.TypeTextPlain, "thiqa_http_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"0123", "4567", "missing", "12345678", "MEMw"} {
		if strings.Contains(string(out), leak) {
			t.Errorf("a label carries %q:\n%s", leak, out)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 7 {
		t.Errorf("duration series: %d, want 7 (one per route)", n)
	}
}

// TestReadiness checks thiqa_ready follows the checks at every scrape,
// including a check added after registration.
func TestReadiness(t *testing.T) {
	reg := prometheus.NewRegistry()
	failing := false
	checks := map[string]func(context.Context) error{
		"store": func(context.Context) error { return nil },
	}
	if err := RegisterReadiness(reg, checks); err != nil {
		t.Fatal(err)
	}
	checks["tsa"] = func(context.Context) error {
		if failing {
			return errors.New("clock not in sync")
		}
		return nil
	}
	expect := func(tsa string) {
		t.Helper()
		want := "# HELP thiqa_ready 1 when the readiness check (the same as GET /readyz) passed at scrape time, by check.\n" +
			"# TYPE thiqa_ready gauge\n" +
			"thiqa_ready{check=\"store\"} 1\n" +
			"thiqa_ready{check=\"tsa\"} " + tsa + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "thiqa_ready"); err != nil {
			t.Fatal(err)
		}
	}
	expect("1")
	failing = true
	expect("0")
	if err := RegisterReadiness(nil, checks); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
}
