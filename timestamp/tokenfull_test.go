package timestamp_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

// TestTSAUnitRenewalOnFullToken renews the TSA unit while the disk of its
// SoftHSM token's folder is full: the service still starts and serves
// with the current unit, the renewal fails with an error that says the
// token is full (hsm.ErrTokenFull, an outage), audited, leaving the unit
// files as they were; the next run, once space is freed, renews it.
func TestTSAUnitRenewalOnFullToken(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 4<<20)
	tokdir := filepath.Join(disk.Dir, "tokens")
	if err := os.MkdirAll(tokdir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "softhsm2.conf")
	if err := os.WriteFile(conf, hsm.SoftHSMConf(tokdir, "test"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	f := newFixtureOnToken(t, storetest.Dialects()[0], tokdir)
	if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tokdir); len(ents) == 0 {
		t.Fatal("the token is not in the folder on the small disk")
	}
	before := readFile(t, f.units.UnitPath())

	disk.Fill(t)
	renewBefore := 1096 * 24 * time.Hour // always due
	in := f.serve(t, timestamp.NewStaticChecker(true), renewBefore)
	err := in.svc.RenewIfDue(t.Context(), time.Now())
	if !errors.Is(err, hsm.ErrTokenFull) || !outage.Is(err) {
		t.Fatalf("renewal on a full token: %v (outage %v)", err, outage.Is(err))
	}
	if readFile(t, f.units.UnitPath()) != before || f.unitKeys(t) != 1 {
		t.Fatal("a failed renewal changed the unit or left a key")
	}
	if n := storetest.AuditCount(t, f.db, timestamp.ActionRenewUnit, audit.OutcomeFailure); n < 2 {
		t.Fatalf("%d failed renewals audited, want 2 (at start and on the next run)", n)
	}
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "still served")
	if r, resp := f.stamp(t, in, f.query(t, data, "-sha256")); r == "" || resp == nil {
		t.Fatal("no time-stamp with the current unit")
	}

	disk.Free(t)
	if err := in.svc.RenewIfDue(t.Context(), time.Now()); err != nil {
		t.Fatalf("renewal once space is freed: %v", err)
	}
	if readFile(t, f.units.UnitPath()) == before || !strings.HasPrefix(in.svc.Unit().Key.Label, "tsa-unit-") {
		t.Fatal("the unit was not renewed once space was freed")
	}
}
