package verify

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRegister: the route answers, is rate-limited per client and counts
// its requests by status.
func TestRegister(t *testing.T) {
	mux := http.NewServeMux()
	reg := prometheus.NewPedanticRegistry()
	if err := New(Options{Revocation: RevocationIgnored}).Register(mux, RouteOptions{MaxUploadBytes: 1 << 20, RatePerSecond: 0.001, Burst: 1, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/verify", strings.NewReader("not a pdf")))
		if rec.Code != want {
			t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
		}
	}
	want := `
# HELP thiqa_verify_requests_total POST /api/v1/verify requests by HTTP status (200: a report, 413: too large, 429: rate-limited).
# TYPE thiqa_verify_requests_total counter
thiqa_verify_requests_total{code="200"} 1
thiqa_verify_requests_total{code="429"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "thiqa_verify_requests_total"); err != nil {
		t.Fatal(err)
	}
	if err := New(Options{}).Register(http.NewServeMux(), RouteOptions{Registerer: reg}); err == nil {
		t.Fatal("the metric was registered twice")
	}
}

// TestRegisterExportsRequestsFromTheStart: before the first request,
// thiqa_verify_requests_total is exported at zero, so that the share of
// busy refusals (alert ThiqaVerifyBusy) has a denominator from the start
// and the first requests are an increase, not a new series.
func TestRegisterExportsRequestsFromTheStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := New(Options{Revocation: RevocationIgnored}).Register(http.NewServeMux(), RouteOptions{MaxUploadBytes: 1 << 20, RatePerSecond: 1, Burst: 1, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP thiqa_verify_requests_total POST /api/v1/verify requests by HTTP status (200: a report, 413: too large, 429: rate-limited).
# TYPE thiqa_verify_requests_total counter
thiqa_verify_requests_total{code="200"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "thiqa_verify_requests_total"); err != nil {
		t.Fatal(err)
	}
}
