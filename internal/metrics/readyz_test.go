package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
	// A warning with no check of its own is an entry: "ok" while it is quiet.
	code, body = get(map[string]func(context.Context) error{"store": ok}, map[string]func() string{"ocsp": func() string { return "" }})
	if code != http.StatusOK || body["ocsp"] != "ok" || len(body) != 2 {
		t.Fatalf("a quiet warning: %d %v", code, body)
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

// TestWarningOf: a check made a warning says its error on one line, and
// nothing when it passes; thiqa_ready_warning follows it at every scrape.
func TestWarningOf(t *testing.T) {
	var fail error
	warn := WarningOf(func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the check runs without a deadline")
		}
		return fail
	})
	if got := warn(); got != "" {
		t.Fatalf("passing check warns %q", got)
	}
	reg := prometheus.NewRegistry()
	warnings := map[string]func() string{}
	if err := RegisterReadinessWarnings(reg, warnings); err != nil {
		t.Fatal(err)
	}
	warnings["ocsp"] = warn // added after registration, as the services are wired
	expect := func(v string) {
		t.Helper()
		want := "# HELP thiqa_ready_warning 1 when the readiness warning (GET /readyz shows it in place of \"ok\", still 200) was set at scrape time, by check.\n" +
			"# TYPE thiqa_ready_warning gauge\n" +
			"thiqa_ready_warning{check=\"ocsp\"} " + v + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "thiqa_ready_warning"); err != nil {
			t.Fatal(err)
		}
	}
	expect("0")
	fail = errors.New("CA citizen: revoked\n  renewing")
	if got := warn(); got != "CA citizen: revoked renewing" {
		t.Fatalf("failing check warns %q", got)
	}
	expect("1")
	if err := RegisterReadinessWarnings(nil, warnings); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
}
