package ocsp

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestFreshnessMetrics checks the series the alert rules watch: the
// responder certificate's NotAfter per CA, and the earliest nextUpdate of
// the last complete pre-signing run (capped by the responder certificate).
func TestFreshnessMetrics(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 1, Status{State: Good})
	long := p.responder(t, 72*time.Hour)
	reg := prometheus.NewRegistry()
	set := testSettings(t)
	r, err := New(set, []Issuer{{Name: "citizen", Cert: p.ca, Responder: long}}, src, NewCache(100), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ca := map[string]string{"ca": "citizen"}
	if got := counter(t, reg, "thiqa_ocsp_responder_certificate_not_after_seconds", ca); got != float64(long.Cert.NotAfter.Unix()) {
		t.Fatalf("responder NotAfter %v, want %d", got, long.Cert.NotAfter.Unix())
	}
	if got := counter(t, reg, "thiqa_ocsp_presign_next_update_seconds", ca); got != 0 {
		t.Fatalf("nextUpdate before any run: %v", got)
	}
	if _, err := r.PresignIssuer(context.Background(), "citizen"); err != nil {
		t.Fatal(err)
	}
	want := float64(time.Now().Add(set.Validity).Unix())
	if got := counter(t, reg, "thiqa_ocsp_presign_next_update_seconds", ca); math.Abs(got-want) > 2 {
		t.Fatalf("nextUpdate after a run %v, want about %v", got, want)
	}

	// A responder certificate ending before Validity caps the nextUpdate.
	p2 := newPKI(t, "Other")
	reg2 := prometheus.NewRegistry()
	short := p2.responder(t, 12*time.Hour) // ends before a 24 h response would
	r2, err := New(set, []Issuer{{Name: "citizen", Cert: p2.ca, Responder: short}}, src, NewCache(100), nil, reg2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.PresignIssuer(context.Background(), "citizen"); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg2, "thiqa_ocsp_presign_next_update_seconds", ca); got != float64(short.Cert.NotAfter.Unix()) {
		t.Fatalf("capped nextUpdate %v, want %d", got, short.Cert.NotAfter.Unix())
	}
}
