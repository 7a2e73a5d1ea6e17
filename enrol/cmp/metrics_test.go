package cmp

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRequestsExportedFromTheStart: before the first request, the bodies
// that enrol and revoke are exported at zero as accepted and as
// systemUnavail, so that the alert on the share answered "try later"
// (ThiqaCMPUnavailable) has its series from the start and the first
// refusals of an outage are an increase, not a new series.
func TestRequestsExportedFromTheStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newRequestsMetric())
	var want strings.Builder
	want.WriteString("# HELP thiqa_cmp_requests_total CMP requests by body type and outcome (the failInfo of a refusal).\n# TYPE thiqa_cmp_requests_total counter\n")
	for _, body := range []string{"cr", "ir", "kur", "p10cr", "rr"} {
		for _, outcome := range []string{"accepted", "systemUnavail"} {
			want.WriteString(`thiqa_cmp_requests_total{body="` + body + `",outcome="` + outcome + "\"} 0\n")
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "thiqa_cmp_requests_total"); err != nil {
		t.Fatal(err)
	}
}
