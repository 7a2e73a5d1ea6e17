package crl_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestImportedReloadOnLoadStore, on SQLite and PostgreSQL: the root CRL a
// running server reloads (Run) reaches OnLoad at the reload that reads it,
// also while it is held back for its switch time, and a node that starts
// after the import hears it at its first Load. This is what stops a
// running server issuing from an issuing CA the new CRL revokes
// (cmd/thiqa wireRootCRL); the end-to-end test imports before the server
// starts instead of waiting for the 30 s reload.
func TestImportedReloadOnLoadStore(t *testing.T) {
	root, key := storeTestRoot(t)
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, d.NewConfig(t)).ImportedCRLs()
			imports := func(n int64) {
				t.Helper()
				importRootCRL(t, st, root, key, n)
			}
			node := func() (*crl.Imported, chan int64) {
				heard := make(chan int64, 10)
				return crl.NewImported("root", root, st, crl.ImportedOptions{SwitchAfter: time.Hour,
					OnLoad: func(_ context.Context, rl *x509.RevocationList) error { heard <- rl.Number.Int64(); return nil }}), heard
			}
			hears := func(heard chan int64, want int64) {
				t.Helper()
				select {
				case n := <-heard:
					if n != want {
						t.Fatalf("OnLoad heard CRL %d, want %d", n, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("OnLoad did not hear CRL %d", want)
				}
			}

			imports(1)
			running, heard := node()
			if err := running.Load(ctx); err != nil {
				t.Fatal(err)
			}
			hears(heard, 1)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { running.Run(runCtx, 20*time.Millisecond); close(done) }()
			t.Cleanup(func() { stop(); <-done })

			imports(2)
			hears(heard, 2) // at the reload, held back for an hour
			if c, _ := running.Current(); c.Number.Int64() != 1 {
				t.Fatalf("the running node serves CRL %d before the switch time, want 1", c.Number)
			}
			time.Sleep(100 * time.Millisecond) // more reloads of the same CRL
			select {
			case n := <-heard:
				t.Fatalf("OnLoad heard CRL %d again at a reload that read the same CRL", n)
			default:
			}

			started, heardStarted := node()
			if err := started.Load(ctx); err != nil {
				t.Fatal(err)
			}
			hears(heardStarted, 2)
		})
	}
}

// TestImportedOnLoadRetryStore, on SQLite and PostgreSQL: when OnLoad
// fails (the CA could not apply the root CRL), Load says so and the next
// Load of the same CRL tells OnLoad again until it succeeds, then no more;
// a Load that finds no CRL tells OnNone. Without this a CRL that failed to
// apply was never applied, and a node that could not read it at start
// never learned that none was imported.
func TestImportedOnLoadRetryStore(t *testing.T) {
	root, key := storeTestRoot(t)
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, d.NewConfig(t)).ImportedCRLs()
			failing := errors.New("cannot apply")
			calls, fail, none := 0, true, 0
			imp := crl.NewImported("root", root, st, crl.ImportedOptions{
				OnLoad: func(context.Context, *x509.RevocationList) error {
					calls++
					if fail {
						return failing
					}
					return nil
				},
				OnNone: func(context.Context) { none++ },
			})
			if err := imp.Load(ctx); !errors.Is(err, crl.ErrNoImported) || none != 1 {
				t.Fatalf("Load with none imported: %v, OnNone told %d times", err, none)
			}
			importRootCRL(t, st, root, key, 1)
			if err := imp.Load(ctx); !errors.Is(err, failing) || calls != 1 {
				t.Fatalf("first Load: %v after %d OnLoad calls, want the OnLoad error after 1", err, calls)
			}
			if err := imp.Load(ctx); !errors.Is(err, failing) || calls != 2 {
				t.Fatalf("reload of the CRL OnLoad failed on: %v after %d OnLoad calls, want it told again (2)", err, calls)
			}
			fail = false
			if err := imp.Load(ctx); err != nil || calls != 3 {
				t.Fatalf("reload once OnLoad succeeds: %v after %d calls, want nil after 3", err, calls)
			}
			if err := imp.Load(ctx); err != nil || calls != 3 {
				t.Fatalf("reload after OnLoad succeeded: %v after %d calls, want nil and no new call", err, calls)
			}
			if cur, ok := imp.Current(); !ok || cur.Number.Int64() != 1 {
				t.Fatal("the CRL is not served while OnLoad fails")
			}
		})
	}
}

// storeTestRoot is a self-signed root CA certificate and its key.
func storeTestRoot(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour * 24 * 365), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return root, key
}

// importRootCRL signs root CRL number n (valid 30 days) and saves it in st
// as `thiqa ca crl import` does.
func importRootCRL(t *testing.T, st crl.ImportedStore, root *x509.Certificate, key *ecdsa.PrivateKey, n int64) {
	t.Helper()
	now := time.Now()
	raw, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(30 * 24 * time.Hour)}, root, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := crl.CheckImported("root", raw, root, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveImportedCRL(t.Context(), c, "test", now); err != nil {
		t.Fatal(err)
	}
}
