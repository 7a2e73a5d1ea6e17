package timestamp_test

import (
	"crypto/x509"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// A backward clock step just after the unit was renewed puts the clock
// before the new unit's notBefore (the CA backdates it by a minute only):
// the unit it replaced, still valid, signs until the clock reaches it, so
// that no token has a genTime before its signer's validity, and none is
// refused.
func TestTSAUnitRenewalThenBackwardClockStep(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			var ahead atomic.Int64 // how far the service's clock is ahead of the real one
			f.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			// The unit is renewed at start by the clock 3 minutes ahead,
			// which then steps back to the real time: before the renewed
			// unit's notBefore (backdated a minute), after the first one's.
			f.pki.Skew(3 * time.Minute)
			ahead.Store(int64(3 * time.Minute))
			in := f.serve(t, timestamp.NewStaticChecker(true), 1096*24*time.Hour)
			f.pki.Skew(0)
			ahead.Store(0)
			renewed := in.svc.Unit().Cert
			if !time.Now().Before(renewed.NotBefore) {
				t.Fatalf("the renewed unit is valid from %s: no step to test", renewed.NotBefore)
			}
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "clock step")
			signer := func() *x509.Certificate {
				t.Helper()
				_, resp := f.stamp(t, in, f.query(t, data, "-sha256", "-cert"))
				if resp.Status.Status != tsp.StatusGranted {
					t.Fatalf("at %s: not granted: %s", f.now(), resp.Status)
				}
				tok, err := tsp.ParseToken(resp.Token)
				if err != nil || len(tok.Certificates) == 0 {
					t.Fatalf("token: %v", err)
				}
				c, err := x509.ParseCertificate(tok.Certificates[0])
				if err != nil {
					t.Fatal(err)
				}
				if tok.Info.GenTime.Before(c.NotBefore) || tok.Info.GenTime.After(c.NotAfter) {
					t.Errorf("genTime %s outside its signer's validity %s to %s", tok.Info.GenTime, c.NotBefore, c.NotAfter)
				}
				return c
			}
			if c := signer(); c.Equal(renewed) {
				t.Fatal("before the renewed unit's notBefore, signed by it")
			}
			if err := in.svc.Ready(t.Context()); err != nil {
				t.Fatalf("not ready while the unit it replaced serves: %v", err)
			}
			ahead.Store(int64(3 * time.Minute)) // the clock has caught up
			if c := signer(); !c.Equal(renewed) {
				t.Fatal("once the clock reached its notBefore, not signed by the renewed unit")
			}
		})
	}
}
