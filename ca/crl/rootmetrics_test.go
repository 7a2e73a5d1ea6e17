package crl

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterRootMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterRootMetrics(reg, true, func() float64 { return 42 }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP thiqa_root_crl_next_update_seconds nextUpdate (Unix time) of the root CRL served at /crl/root.crl; 0 while there is none.
# TYPE thiqa_root_crl_next_update_seconds gauge
thiqa_root_crl_next_update_seconds 42
# HELP thiqa_root_key_online 1 while the root CA key is on the online token (development only), 0 when the root is offline.
# TYPE thiqa_root_key_online gauge
thiqa_root_key_online 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if err := RegisterRootMetrics(reg, false, func() float64 { return 0 }); err == nil {
		t.Fatal("registered twice")
	}
}
