package ocsp

import (
	"context"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// downRenewer fails every renewal (the CA down) and counts them.
type downRenewer struct{ calls atomic.Int32 }

func (r *downRenewer) RenewResponder(context.Context, string, *x509.Certificate) (ResponderRenewal, error) {
	r.calls.Add(1)
	return ResponderRenewal{}, errors.New("the CA is unreachable")
}

// While the renewal of a revoked responder keeps failing, the retries back
// off: not a failure (and its audit record) every few seconds for as long
// as the outage lasts.
func TestRevokedResponderRenewalFailuresBackOff(t *testing.T) {
	p := newPKI(t, "Thiqa")
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour), Revoked: true}},
		&memStatus{}, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rn := &downRenewer{}
	ps := NewPresigner(r, rn)
	ps.revokedRetry = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 800*time.Millisecond)
	defer cancel()
	_ = ps.Run(ctx)
	// 20 ms apart: about 40 tries; backing off (20, 40, 80, … ms): 6.
	if n := rn.calls.Load(); n < 2 || n > 10 {
		t.Fatalf("%d renewals tried in 800 ms with retries from 20 ms, want 2 to 10 (backing off)", n)
	}
}
