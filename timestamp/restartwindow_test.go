package timestamp_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// A TSA restarted just after its unit was renewed by a CA whose clock is
// a few minutes ahead (the restarted node's clock is before the new
// unit's notBefore) is ready at once: the unit the renewal replaced, kept
// in the folder with its key still on the token, signs until the clock
// reaches the new unit, as the running service does after a backward
// clock step. Without that unit, it is not ready until then and says so,
// naming the notBefore, as before.
func TestTSARestartBeforeNewUnitValid(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			var ahead atomic.Int64 // how far the services' clock is ahead of the real one
			f.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			// Renewed at start by a node whose clock (and the CA's) is 3
			// minutes ahead; the CA backdates the new unit a minute only.
			f.pki.Skew(3 * time.Minute)
			ahead.Store(int64(3 * time.Minute))
			renewed := f.serve(t, timestamp.NewStaticChecker(true), 1096*24*time.Hour).svc.Unit().Cert
			f.pki.Skew(0)
			ahead.Store(0)
			if !time.Now().Before(renewed.NotBefore) {
				t.Fatalf("the renewed unit is valid from %s: no window to test", renewed.NotBefore)
			}

			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour) // the restart, clock behind
			if !in.svc.Unit().Cert.Equal(renewed) {
				t.Fatal("the restart did not load the renewed unit")
			}
			if err := in.svc.Ready(t.Context()); err != nil {
				t.Fatalf("not ready after a restart before the renewed unit's notBefore: %v", err)
			}
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "restart in the window")
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
			if c := signer(); !c.Equal(first.Cert) {
				t.Fatal("before the renewed unit's notBefore, not signed by the unit it replaced")
			}
			ahead.Store(int64(3 * time.Minute)) // the clock has caught up
			if c := signer(); !c.Equal(renewed) {
				t.Fatal("once the clock reached its notBefore, not signed by the renewed unit")
			}

			// Without the unit it replaced: as before, the service does not
			// start until the new one is valid, and says why.
			ahead.Store(0)
			if err := os.Remove(f.units.PreviousPath()); err != nil {
				t.Fatal(err)
			}
			db := storetest.Open(t, f.cfg)
			serials, err := timestamp.NewBlockAllocator(db.SerialBlocks(), timestamp.SerialCounter, 0)
			if err != nil {
				t.Fatal(err)
			}
			probe := &instance{db: db, serials: serials, clk: timestamp.NewStaticChecker(true), reg: prometheus.NewRegistry()}
			_, err = timestamp.NewService(t.Context(), probe.options(f, f.units, time.Hour))
			nb := renewed.NotBefore.UTC().Format(time.RFC3339)
			if !errors.Is(err, timestamp.ErrUnitCertificateNotYetValid) || !strings.Contains(err.Error(), nb) {
				t.Fatalf("no previous unit: %v, want the not-yet-valid error naming %s", err, nb)
			}
		})
	}
}

// A unit replaced because it was revoked (its key compromised, or its
// time not trusted: docs/operations.md, TSA clock loss) never signs again:
// a restart before the renewed unit's notBefore finds it kept in the
// folder, valid by its dates and its key on the token, but revoked in the
// store, and does not start until the renewed unit is valid, as with no
// unit kept. A service that cannot check the status does not use it.
func TestTSARestartPreviousRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			f.pki.Skew(3 * time.Minute)
			next, err := f.units.Renew(t.Context(), time.Now(), "thiqa-serve")
			f.pki.Skew(0)
			if err != nil {
				t.Fatal(err)
			}
			if !time.Now().Before(next.Cert.NotBefore) {
				t.Fatalf("the renewed unit is valid from %s: no window to test", next.Cert.NotBefore)
			}
			start := func(status timestamp.UnitStatus) error {
				t.Helper()
				db := storetest.Open(t, f.cfg)
				serials, err := timestamp.NewBlockAllocator(db.SerialBlocks(), timestamp.SerialCounter, 0)
				if err != nil {
					t.Fatal(err)
				}
				in := &instance{db: db, serials: serials, clk: timestamp.NewStaticChecker(true), reg: prometheus.NewRegistry()}
				o := in.options(f, f.units, time.Hour)
				o.Status = status
				_, err = timestamp.NewService(t.Context(), o)
				return err
			}
			if err := start(unitStatus{f.db.Revocations()}); err != nil {
				t.Fatalf("the unit kept, not revoked, does not sign: %v", err)
			}
			if err := start(nil); !errors.Is(err, timestamp.ErrUnitCertificateNotYetValid) {
				t.Fatalf("without a status to check, the unit kept: %v, want the not-yet-valid error", err)
			}

			svc, err := revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: f.log})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Revoke(t.Context(), "officer-7", hex.EncodeToString(first.Cert.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
				t.Fatalf("revoking the replaced unit: %v", err)
			}
			if err := start(unitStatus{f.db.Revocations()}); !errors.Is(err, timestamp.ErrUnitCertificateNotYetValid) {
				t.Fatalf("the revoked unit kept: %v, want the not-yet-valid error", err)
			}
		})
	}
}

// unitStatus reads the revocation of unit certificates of the test CA
// "tsa" from the store (timestamp.UnitStatus), as cmd/thiqa does.
type unitStatus struct{ rs *store.Revocations }

func (u unitStatus) UnitRevoked(ctx context.Context, cert *x509.Certificate) (bool, error) {
	st, err := u.rs.Status(ctx, "tsa", cert.SerialNumber)
	if err != nil {
		return false, err
	}
	switch st.State {
	case ocsp.Good:
		return false, nil
	case ocsp.Revoked:
		return true, nil
	}
	return false, fmt.Errorf("no unit certificate %x of CA tsa", cert.SerialNumber)
}

// A renewed unit whose notBefore is far ahead of the clock (certified by
// a CA whose clock was wrong by more than the nodes' clocks ever differ)
// is not taken with the unit it replaced signing until it is valid, which
// could last until that one expires: the service does not start and says
// why, as with any unit not valid yet.
func TestTSARestartNewUnitFarAhead(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
		t.Fatal(err)
	}
	f.pki.Skew(2 * time.Hour)
	next, err := f.units.Renew(t.Context(), time.Now(), "thiqa-serve")
	f.pki.Skew(0)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t, f.cfg)
	serials, err := timestamp.NewBlockAllocator(db.SerialBlocks(), timestamp.SerialCounter, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{db: db, serials: serials, clk: timestamp.NewStaticChecker(true), reg: prometheus.NewRegistry()}
	_, err = timestamp.NewService(t.Context(), in.options(f, f.units, time.Hour))
	nb := next.Cert.NotBefore.UTC().Format(time.RFC3339)
	if !errors.Is(err, timestamp.ErrUnitCertificateNotYetValid) || !strings.Contains(err.Error(), nb) {
		t.Fatalf("a unit valid from %s taken: %v, want the not-yet-valid error", nb, err)
	}
}

// The unit kept is used only while its certificate is valid and its key
// on the token.
func TestTSAPreviousUnitOnlyWhenUsable(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	first, err := f.units.Init(t.Context(), "thiqa-init")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.units.LoadPrevious(t.Context(), first.Cert, time.Now()); !errors.Is(err, timestamp.ErrNoPreviousUnit) {
		t.Fatalf("a previous unit while the current one is valid: %v", err)
	}
	f.pki.Skew(3 * time.Minute)
	next, err := f.units.Renew(t.Context(), time.Now(), "thiqa-serve")
	f.pki.Skew(0)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := f.units.LoadPrevious(t.Context(), next.Cert, time.Now())
	if err != nil || !prev.Cert.Equal(first.Cert) || prev.Key.Label != first.Key.Label || len(prev.Chain) != 1 {
		t.Fatalf("previous unit: %v", err)
	}
	if _, err := f.units.LoadPrevious(t.Context(), next.Cert, first.Cert.NotAfter); !errors.Is(err, timestamp.ErrNoPreviousUnit) {
		t.Fatalf("a previous unit after its notAfter: %v", err)
	}
	if err := f.keys.tok.DeleteKey(t.Context(), first.Key.Label); err != nil {
		t.Fatal(err)
	}
	if _, err := f.units.LoadPrevious(t.Context(), next.Cert, time.Now()); !errors.Is(err, timestamp.ErrNoPreviousUnit) {
		t.Fatalf("a previous unit whose key is no longer on the token: %v", err)
	}
}
