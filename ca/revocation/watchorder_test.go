package revocation_test

import (
	"context"
	"math/big"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store/storetest"
)

// slowResponder re-signs slowly (its signing slots taken, a slow token):
// Revoked waits until a watcher has been told, or gives up after a while.
type slowResponder struct {
	http.Handler
	told      chan struct{}
	toldFirst atomic.Bool
}

func (r *slowResponder) Revoked(ctx context.Context, issuer string, serial *big.Int) error {
	select {
	case <-r.told:
		r.toldFirst.Store(true)
	case <-time.After(2 * time.Second):
	}
	return nil
}

// The watchers (the TSA: its unit stops signing) are told of a revocation
// before the OCSP responses are re-signed, which may take a while: the
// revoked unit does not sign meanwhile.
func TestWatchersToldBeforeOCSPResigning(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			serial := f.issue(t, "12345678", "leaf.pem")
			sr := &slowResponder{Handler: http.NotFoundHandler(), told: make(chan struct{})}
			svc, err := revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: f.log, Responder: sr})
			if err != nil {
				t.Fatal(err)
			}
			var once atomic.Bool
			svc.Watch(func(_ context.Context, r revocation.Revocation) {
				if r.Serial == serial && !once.Swap(true) {
					close(sr.told)
				}
			})
			if _, err := svc.Revoke(t.Context(), "officer-7", serial, "keyCompromise", nil); err != nil {
				t.Fatal(err)
			}
			if !once.Load() {
				t.Fatal("the watcher was not told of the revocation")
			}
			if !sr.toldFirst.Load() {
				t.Fatal("the OCSP responses were re-signed before the watchers were told: the revoked TSA unit signed meanwhile")
			}
		})
	}
}
