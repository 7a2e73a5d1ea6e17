package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadinessHandler: every check ok is 200; a failing check is 503 with
// its error on one line; a warning replaces "ok" without failing.
func TestReadinessHandler(t *testing.T) {
	ok := func(context.Context) error { return nil }
	get := func(checks map[string]func(context.Context) error, warnings map[string]func() string) (int, map[string]string) {
		rec := httptest.NewRecorder()
		ReadinessHandler(checks, warnings)(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		return rec.Code, body
	}
	code, body := get(map[string]func(context.Context) error{"store": ok}, map[string]func() string{"tsa": func() string { return "clock" }})
	if code != http.StatusOK || body["store"] != "ok" || body["tsa"] != "warning: clock" {
		t.Fatalf("healthy: %d %v", code, body)
	}
	code, body = get(map[string]func(context.Context) error{"store": ok, "token": func(context.Context) error { return errors.New("gone\n  away") }}, nil)
	if code != http.StatusServiceUnavailable || body["token"] != "gone away" || body["store"] != "ok" {
		t.Fatalf("a failing check: %d %v", code, body)
	}
}

// TestCountStatus counts by status code, an implicit 200 included.
func TestCountStatus(t *testing.T) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total", Help: "t"}, []string{"code"})
	h := CountStatus(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	for _, p := range []string{"/", "/big", "/"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, p, nil))
	}
	if testutil.ToFloat64(c.WithLabelValues("200")) != 2 || testutil.ToFloat64(c.WithLabelValues("413")) != 1 {
		t.Fatal("counts by status are wrong")
	}
}
