package timestamp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

// TestTSAUnitRenewalInCluster runs two TSA instances over one store, one
// token and one data folder, as two `thiqa serve` nodes do, and makes the
// unit due on both at once: exactly one new key and one new certificate
// are made and recorded, both instances end up signing with the unit
// unit.pem names, and an instance started later from a copy of the data
// folder taken before the renewal adopts that unit instead of renewing
// again.
func TestTSAUnitRenewalInCluster(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runTSAUnitRenewalInCluster(t, d) })
	}
}

func runTSAUnitRenewalInCluster(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	first, err := f.units.Init(t.Context(), "thiqa-init")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the data folder as it is before the renewal.
	stale := &timestamp.Units{Dir: filepath.Join(t.TempDir(), "tsa"), KeyLabel: f.units.KeyLabel, Keys: f.keys, CA: f.units.CA}
	if err := os.MkdirAll(stale.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, stale.UnitPath(), readFile(t, f.units.UnitPath()))
	writeFile(t, stale.ChainPath(), readFile(t, f.units.ChainPath()))

	// A renewal margin beyond the unit's life: the unit is due as the
	// nodes start, on both at once (and a renewed unit is not renewed
	// again before it expires).
	const renewBefore = 1096 * 24 * time.Hour
	// The nodes' stores are opened first: opening one (PostgreSQL's
	// connections, the migrations' check) takes longer than a renewal, so
	// a node opening its store in the race would load the unit the other
	// had just renewed, due at once with this margin, and renew it again.
	nodes := make([]*instance, 2)
	dbs := []*store.DB{storetest.Open(t, f.cfg), storetest.Open(t, f.cfg)}
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i] = f.serveOn(t, dbs[i], timestamp.NewStaticChecker(true), renewBefore) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// The next check of each node: one that found the renewal under way
	// as it started adopts the new unit now.
	for _, n := range nodes {
		if err := n.svc.RenewIfDue(t.Context(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	if n := f.unitKeys(t); n != 2 {
		t.Fatalf("%d unit keys on the token, want the original and one renewal", n)
	}
	if n := f.sqlCount(t, "SELECT count(*) FROM certificates WHERE profile = 'tsa-unit' AND state = 'issued'"); n != 2 {
		t.Fatalf("%d tsa-unit certificates issued, want the original and one renewal", n)
	}
	if n := storetest.AuditCount(t, f.db, timestamp.ActionRenewUnit, audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d tsa.unit.renew records, want one", n)
	}
	published := readFile(t, f.units.UnitPath())
	pub, err := f.units.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pub.Cert.Equal(first.Cert) {
		t.Fatal("unit.pem still names the original unit")
	}
	for i, n := range nodes {
		if u := n.svc.Unit(); !u.Cert.Equal(pub.Cert) || u.Key.Label != pub.Key.Label {
			t.Fatalf("node %d signs with unit %s (key %s), unit.pem names %s (key %s)", i, u.Cert.SerialNumber, u.Key.Label, pub.Cert.SerialNumber, pub.Key.Label)
		}
		// Its tokens verify with the published unit certificate.
		data := filepath.Join(f.work, "node-data")
		writeFile(t, data, "cluster")
		q := f.query(t, data, "-sha256")
		r, resp := f.stamp(t, n, q)
		serialOf(t, resp)
		if out, ok := f.verify(t, f.withUnit(t, published), "-queryfile", q, "-in", r); !ok {
			t.Fatalf("a token of node %d does not verify with unit.pem: %s", i, out)
		}
	}

	// A node restarted from a stale copy of the data folder adopts the
	// renewed unit (and brings its unit.pem up to date); nothing new is made.
	restarted := &instance{db: storetest.Open(t, f.cfg), serials: nodes[0].serials, clk: nodes[0].clk, reg: prometheus.NewRegistry()}
	late, err := timestamp.NewService(t.Context(), restarted.options(f, stale, renewBefore))
	if err != nil {
		t.Fatal(err)
	}
	if err := late.RenewIfDue(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if u := late.Unit(); !u.Cert.Equal(pub.Cert) {
		t.Fatalf("the late node signs with unit %s, want %s", u.Cert.SerialNumber, pub.Cert.SerialNumber)
	}
	if got := readFile(t, stale.UnitPath()); got != published {
		t.Fatal("the late node's unit.pem was not brought up to date")
	}
	if !bytes.Equal([]byte(readFile(t, stale.ChainPath())), []byte(readFile(t, f.units.ChainPath()))) {
		t.Fatal("the late node's chain.pem differs")
	}
	if n := f.unitKeys(t); n != 2 {
		t.Fatalf("%d unit keys after the late node started, want 2", n)
	}
	if n := storetest.AuditCount(t, f.db, timestamp.ActionRenewUnit, audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d tsa.unit.renew records after the late node started, want one", n)
	}
	if rep, err := audit.Verify(t.Context(), f.db); err != nil || !rep.OK() {
		t.Fatalf("audit verify: %v %v", rep, err)
	}
}
