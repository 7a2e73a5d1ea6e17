package crl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// memImported is an in-memory ImportedStore.
type memImported struct {
	mu sync.Mutex
	m  map[string]*ImportedCRL
}

func (s *memImported) SaveImportedCRL(_ context.Context, c *ImportedCRL, _ string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[c.Issuer]; ok && !c.NewerThan(old) {
		if string(old.DER) == string(c.DER) {
			return nil
		}
		return ErrNotNewer
	}
	kept := *c
	kept.ImportedAt = at
	s.m[c.Issuer] = &kept
	return nil
}

func (s *memImported) ImportedCRL(_ context.Context, issuer string) (*ImportedCRL, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.m[issuer]; ok {
		return c, nil
	}
	return nil, ErrNoImported
}

// testRoot is a self-signed CA certificate and its key.
func testRoot(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour * 24 * 365), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCRLSign | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func signedCRL(t *testing.T, issuer *x509.Certificate, key *ecdsa.PrivateKey, number int64, this, next time.Time) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: this, NextUpdate: next,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(77), RevocationTime: this.Add(-time.Hour)}}}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCheckImported(t *testing.T) {
	root, key := testRoot(t, "Root")
	other, otherKey := testRoot(t, "Other")
	now := time.Now()
	good := signedCRL(t, root, key, 3, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	c, err := CheckImported("root", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: good}), root, now)
	if err != nil || c.Number.Int64() != 3 || c.Entries != 1 || string(c.DER) != string(good) {
		t.Fatalf("good CRL (PEM): %v %+v", err, c)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"not yet valid", signedCRL(t, root, key, 4, now.Add(48*time.Hour), now.Add(90*24*time.Hour)), ErrNotYetValid},
		{"lapsed", signedCRL(t, root, key, 4, now.Add(-10*24*time.Hour), now.Add(-time.Minute)), ErrLapsed},
		{"another CA's", signedCRL(t, other, otherKey, 4, now.Add(-time.Hour), now.Add(24*time.Hour)), ErrWrongIssuer},
		{"garbage", []byte("not a CRL"), ErrMalformed},
		{"a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CheckImported("root", tc.raw, root, now); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestImportedPublishes(t *testing.T) {
	root, key := testRoot(t, "Root")
	now := time.Now()
	clock := now
	st := &memImported{m: map[string]*ImportedCRL{}}
	imp := NewImported("root", root, st, ImportedOptions{Now: func() time.Time { return clock }})
	if err := imp.Ready(context.Background()); !errors.Is(err, ErrNoImported) {
		t.Fatalf("Ready with nothing imported: %v", err)
	}
	get := func() *httptest.ResponseRecorder {
		rr := httptest.NewRecorder()
		imp.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/crl/root.crl", nil))
		return rr
	}
	if rr := get(); rr.Code != http.StatusNotFound || imp.NextUpdate() != 0 {
		t.Fatalf("nothing imported: %d, nextUpdate %v", rr.Code, imp.NextUpdate())
	}
	c, err := CheckImported("root", signedCRL(t, root, key, 5, now.Add(-time.Hour), now.Add(20*24*time.Hour)), root, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveImportedCRL(context.Background(), c, "op", now); err != nil {
		t.Fatal(err)
	}
	if err := imp.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	rr := get()
	if rr.Code != http.StatusOK || rr.Header().Get("Content-Type") != "application/pkix-crl" || rr.Body.String() != string(c.DER) {
		t.Fatalf("served: %d %v", rr.Code, rr.Header())
	}
	if imp.NextUpdate() != float64(c.NextUpdate.Unix()) {
		t.Fatalf("NextUpdate() = %v, want the CRL's %v", imp.NextUpdate(), c.NextUpdate)
	}
	if err := imp.Ready(context.Background()); err != nil || imp.Warning() != "" {
		t.Fatalf("20 days left: ready %v, warning %q", err, imp.Warning())
	}
	clock = now.Add(10 * 24 * time.Hour)
	if w := imp.Warning(); !strings.Contains(w, "lapses") || imp.Ready(context.Background()) != nil {
		t.Fatalf("10 days left: warning %q", w)
	}
	clock = now.Add(21 * 24 * time.Hour)
	if rr := get(); rr.Code != http.StatusNotFound || !errors.Is(imp.Ready(context.Background()), ErrLapsed) {
		t.Fatalf("lapsed: served %d", rr.Code)
	}
	// An older CRL does not replace it; the same one again changes nothing.
	older, _ := CheckImported("root", signedCRL(t, root, key, 4, now.Add(-time.Hour), now.Add(30*24*time.Hour)), root, now)
	if err := st.SaveImportedCRL(context.Background(), older, "op", now); !errors.Is(err, ErrNotNewer) {
		t.Fatalf("older CRL: %v", err)
	}
	if err := st.SaveImportedCRL(context.Background(), c, "op", now); err != nil {
		t.Fatalf("same CRL again: %v", err)
	}
	// A stored CRL that does not verify (the database was edited) is not loaded.
	other, otherKey := testRoot(t, "Root")
	forged, _ := CheckImported("root", signedCRL(t, other, otherKey, 9, now.Add(-time.Hour), now.Add(30*24*time.Hour)), other, now)
	st.m["root"] = forged
	if err := imp.Load(context.Background()); !errors.Is(err, ErrWrongIssuer) {
		t.Fatalf("forged stored CRL: %v", err)
	}
	if cur, _ := imp.Current(); string(cur.DER) != string(c.DER) {
		t.Fatal("a forged stored CRL replaced the loaded one")
	}
}

// TestImportedNodesSwitchTogether: in a cluster (SwitchAfter set) a node
// that loads a newly imported root CRL keeps serving the one before until
// the import's time plus SwitchAfter, when every node has read it, so the
// nodes switch together and a fetch through the load balancer never gets
// CRL 6 and then CRL 5. A node serving none, or one alone, serves what it
// loads at once.
func TestImportedNodesSwitchTogether(t *testing.T) {
	root, key := testRoot(t, "Root")
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	clock := t0
	now := func() time.Time { return clock }
	st := &memImported{m: map[string]*ImportedCRL{}}
	const switchAfter = 35 * time.Second
	a := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: switchAfter})
	b := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: switchAfter})
	alone := NewImported("root", root, st, ImportedOptions{Now: now})
	importAt := func(n int64) *ImportedCRL {
		t.Helper()
		c, err := CheckImported("root", signedCRL(t, root, key, n, clock.Add(-time.Hour), clock.Add(90*24*time.Hour)), root, clock)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveImportedCRL(ctx, c, "op", clock); err != nil {
			t.Fatal(err)
		}
		return c
	}
	serves := func(name string, i *Imported, want int64) {
		t.Helper()
		rr := httptest.NewRecorder()
		i.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/crl/root.crl", nil))
		rl, err := x509.ParseRevocationList(rr.Body.Bytes())
		if rr.Code != http.StatusOK || err != nil {
			t.Fatalf("%s at +%s: %d %v", name, clock.Sub(t0), rr.Code, err)
		}
		if c, _ := i.Current(); rl.Number.Int64() != want || c.Number.Int64() != want {
			t.Fatalf("%s serves CRL %v (Current %v) at +%s, want %d", name, rl.Number, c.Number, clock.Sub(t0), want)
		}
	}
	load := func(i *Imported) {
		t.Helper()
		if err := i.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	importAt(5)
	for _, i := range []*Imported{a, b, alone} {
		load(i) // the first CRL a node loads is served at once
	}
	serves("A", a, 5)

	clock = t0.Add(time.Hour)
	importAt(6)
	load(a) // A's reload comes first
	load(alone)
	serves("A", a, 5)
	serves("B", b, 5)
	serves("a node alone", alone, 6)
	clock = clock.Add(switchAfter - 5*time.Second)
	load(b) // B's reload, 30 s later
	load(a)
	serves("A", a, 5)
	serves("B", b, 5)
	late := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: switchAfter})
	load(late) // a node that starts serves the newest at once
	serves("a starting node", late, 6)
	clock = clock.Add(5 * time.Second)
	serves("A", a, 6)
	serves("B", b, 6)
}

// TestImportedSwitchBounds: a node holding a newly imported root CRL back
// (SwitchAfter) serves it at once when the one it serves lapses meanwhile
// (it served 404 and failed /readyz with a current CRL in hand), and holds
// it back no longer than SwitchAfter from its load when imported_at, the
// importing machine's clock, is ahead of the node's (an hour ahead held a
// CRL that may revoke an issuing CA back for an hour).
func TestImportedSwitchBounds(t *testing.T) {
	root, key := testRoot(t, "Root")
	ctx := context.Background()
	const switchAfter = 35 * time.Second
	setup := func(t *testing.T, lapseIn, importedAhead time.Duration) (*Imported, *time.Time) {
		t.Helper()
		clock := time.Now().Truncate(time.Second)
		st := &memImported{m: map[string]*ImportedCRL{}}
		i := NewImported("root", root, st, ImportedOptions{Now: func() time.Time { return clock }, SwitchAfter: switchAfter})
		for _, c := range []struct {
			n    int64
			next time.Duration
			at   time.Duration
		}{{5, lapseIn, 0}, {6, 90 * 24 * time.Hour, importedAhead}} {
			crl, err := CheckImported("root", signedCRL(t, root, key, c.n, clock.Add(-time.Hour), clock.Add(c.next)), root, clock)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SaveImportedCRL(ctx, crl, "op", clock.Add(c.at)); err != nil {
				t.Fatal(err)
			}
			if err := i.Load(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return i, &clock
	}
	serves := func(t *testing.T, i *Imported, want int64) {
		t.Helper()
		rr := httptest.NewRecorder()
		i.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/crl/root.crl", nil))
		if rr.Code != http.StatusOK {
			t.Fatalf("GET /crl/root.crl: %d, want CRL %d", rr.Code, want)
		}
		if rl, err := x509.ParseRevocationList(rr.Body.Bytes()); err != nil || rl.Number.Int64() != want {
			t.Fatalf("serves %v (%v), want CRL %d", rl.Number, err, want)
		}
		if err := i.Ready(ctx); err != nil {
			t.Fatalf("/readyz rootCRL: %v", err)
		}
	}
	t.Run("served one lapses in the window", func(t *testing.T) {
		i, clock := setup(t, 10*time.Second, 0)
		serves(t, i, 5) // held back
		*clock = clock.Add(11 * time.Second)
		serves(t, i, 6)
	})
	t.Run("imported_at ahead of the node", func(t *testing.T) {
		i, clock := setup(t, 90*24*time.Hour, time.Hour)
		serves(t, i, 5)
		*clock = clock.Add(switchAfter)
		serves(t, i, 6)
	})
}

// TestImportedSecondImportInWindow: root CRL 6 is imported, then 7 within
// SwitchAfter of it. Node B read only 6 and switches to it at 6's time;
// node A, which read 6 and then 7, switches to 6 then too (it kept only 7
// and served 5 for another 30 s, so a fetch through the load balancer got
// 6 from B and then 5 from A), and both switch to 7 at 7's time.
func TestImportedSecondImportInWindow(t *testing.T) {
	root, key := testRoot(t, "Root")
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	clock := t0
	now := func() time.Time { return clock }
	st := &memImported{m: map[string]*ImportedCRL{}}
	const switchAfter = 35 * time.Second
	a := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: switchAfter})
	b := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: switchAfter})
	importAt := func(n int64) {
		t.Helper()
		c, err := CheckImported("root", signedCRL(t, root, key, n, clock.Add(-time.Hour), clock.Add(90*24*time.Hour)), root, clock)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveImportedCRL(ctx, c, "op", clock); err != nil {
			t.Fatal(err)
		}
	}
	load := func(i ...*Imported) {
		t.Helper()
		for _, i := range i {
			if err := i.Load(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	serves := func(name string, i *Imported, want int64) {
		t.Helper()
		rr := httptest.NewRecorder()
		i.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/crl/root.crl", nil))
		rl, err := x509.ParseRevocationList(rr.Body.Bytes())
		if rr.Code != http.StatusOK || err != nil {
			t.Fatalf("%s at +%s: %d %v, want CRL %d", name, clock.Sub(t0), rr.Code, err, want)
		}
		if rl.Number.Int64() != want {
			t.Fatalf("%s serves CRL %v at +%s, want %d", name, rl.Number, clock.Sub(t0), want)
		}
	}
	importAt(5)
	load(a, b)
	importAt(6)
	clock = clock.Add(2 * time.Second)
	load(a) // A reads 6
	clock = t0.Add(29 * time.Second)
	load(b) // B reads 6
	clock = t0.Add(30 * time.Second)
	importAt(7)
	clock = t0.Add(32 * time.Second)
	load(a) // A reads 7; B's next reload is at +59 s
	serves("A", a, 5)
	serves("B", b, 5)
	clock = t0.Add(switchAfter)
	serves("B", b, 6)
	serves("A", a, 6)
	clock = t0.Add(59 * time.Second)
	load(a, b)
	serves("A", a, 6)
	serves("B", b, 6)
	clock = t0.Add(30*time.Second + switchAfter)
	serves("A", a, 7)
	serves("B", b, 7)
}

// FuzzCheckImported: whatever the bytes, CheckImported returns a CRL of
// the issuer within its validity or an error, and never panics.
func FuzzCheckImported(f *testing.F) {
	root, key := testRoot(f, "Root")
	now := time.Now()
	der, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}, root, key)
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	f.Add([]byte("-----BEGIN X509 CRL-----\n\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := CheckImported("root", raw, root, now)
		if err == nil && (c == nil || !now.Before(c.NextUpdate) || now.Before(c.ThisUpdate)) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// TestImportedOnLoad: OnLoad hears of each CRL a node loads, once, with the
// CRL itself, also when a cluster node stages it until its switch time (so
// that the CA stops issuing from a revoked issuing CA at once).
func TestImportedOnLoad(t *testing.T) {
	root, key := testRoot(t, "Root")
	st := &memImported{m: map[string]*ImportedCRL{}}
	at := time.Now()
	now := func() time.Time { return at }
	var heard []int64
	imp := NewImported("root", root, st, ImportedOptions{Now: now, SwitchAfter: time.Minute,
		OnLoad: func(_ context.Context, rl *x509.RevocationList) error {
			heard = append(heard, rl.Number.Int64())
			return nil
		}})
	for _, n := range []int64{1, 2} {
		c, err := CheckImported("root", signedCRL(t, root, key, n, at.Add(-time.Hour), at.Add(24*time.Hour)), root, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveImportedCRL(t.Context(), c, "test", at); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a reload of the same CRL is not heard again
			if err := imp.Load(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if served, _ := imp.Current(); served.Number.Int64() != 1 {
		t.Fatalf("CRL %d served before the switch time, want 1", served.Number)
	}
	if len(heard) != 2 || heard[0] != 1 || heard[1] != 2 {
		t.Fatalf("OnLoad heard %v, want [1 2]", heard)
	}
}

// TestImportedNotApplied: a CRL OnLoad fails on is served, and Load says so
// with ErrNotApplied, so that the server does not log that the CRL cannot
// be published while it serves it.
func TestImportedNotApplied(t *testing.T) {
	root, key := testRoot(t, "Root")
	st := &memImported{m: map[string]*ImportedCRL{}}
	at := time.Now()
	failing := errors.New("cannot apply")
	imp := NewImported("root", root, st, ImportedOptions{Now: func() time.Time { return at },
		OnLoad: func(context.Context, *x509.RevocationList) error { return failing }})
	c, err := CheckImported("root", signedCRL(t, root, key, 1, at.Add(-time.Hour), at.Add(24*time.Hour)), root, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveImportedCRL(t.Context(), c, "test", at); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"first load", "reload"} {
		if err := imp.Load(t.Context()); !errors.Is(err, ErrNotApplied) || !errors.Is(err, failing) {
			t.Fatalf("%s: %v, want ErrNotApplied wrapping the OnLoad error", what, err)
		}
		if _, ok := imp.Current(); !ok {
			t.Fatalf("%s: the CRL is not served", what)
		}
	}
}

// TestImportedOnBad: a stored CRL that replaced the one served but does
// not verify, or cannot be parsed (an edited or damaged row), is told to
// OnBad at each Load until a good one replaces it: the CA cannot tell
// what it revokes and fails closed, as thiqa issue does on reading it.
// The good CRL served before stays served.
func TestImportedOnBad(t *testing.T) {
	root, key := testRoot(t, "Root")
	st := &memImported{m: map[string]*ImportedCRL{}}
	at := time.Now()
	var loaded []int64
	var bad []error
	imp := NewImported("root", root, st, ImportedOptions{Now: func() time.Time { return at },
		OnLoad: func(_ context.Context, rl *x509.RevocationList) error {
			loaded = append(loaded, rl.Number.Int64())
			return nil
		},
		OnBad: func(_ context.Context, err error) { bad = append(bad, err) }})
	good := func(n int64) *ImportedCRL {
		c, err := CheckImported("root", signedCRL(t, root, key, n, at.Add(-time.Hour), at.Add(24*time.Hour)), root, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	st.m["root"] = good(1)
	if err := imp.Load(t.Context()); err != nil || len(bad) != 0 {
		t.Fatalf("good CRL: %v, OnBad told %v", err, bad)
	}
	other, otherKey := testRoot(t, "Root")
	forged, err := CheckImported("root", signedCRL(t, other, otherKey, 9, at.Add(-time.Hour), at.Add(24*time.Hour)), other, at)
	if err != nil {
		t.Fatal(err)
	}
	st.m["root"] = forged
	for n := 1; n <= 2; n++ {
		if err := imp.Load(t.Context()); !errors.Is(err, ErrWrongIssuer) || len(bad) != n || !errors.Is(bad[n-1], ErrWrongIssuer) {
			t.Fatalf("forged stored CRL, load %d: %v, OnBad told %v", n, err, bad)
		}
	}
	damaged := *forged
	damaged.DER = []byte{0}
	st.m["root"] = &damaged
	if err := imp.Load(t.Context()); err == nil || len(bad) != 3 {
		t.Fatalf("damaged stored CRL: %v, OnBad told %v", err, bad)
	}
	if cur, _ := imp.Current(); cur.Number.Int64() != 1 {
		t.Fatalf("CRL %d served, want the good one (1)", cur.Number)
	}
	st.m["root"] = good(2)
	if err := imp.Load(t.Context()); err != nil || len(bad) != 3 || len(loaded) != 2 || loaded[1] != 2 {
		t.Fatalf("good CRL again: %v, OnBad told %d times, OnLoad heard %v", err, len(bad), loaded)
	}
}
