package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSoleControlAcrossInstances: two signing instances share the
// database (two *store.DB on one SQLite file or PostgreSQL database), each
// with its own PIN manager (its own in-process serialisation). A SAD spent
// by parallel requests on both is spent once, and parallel wrong PINs on
// both are counted so that no more than the limit are ever checked.
func TestSoleControlAcrossInstances(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			a, b := storetest.Open(t, cfg).SigningCredentials(), storetest.Open(t, cfg).SigningCredentials()
			if _, err := a.RegisterCredential(ctx, signing.CredentialRecord{ID: "cred-a", OwnerKind: signing.OwnerCitizen, OwnerID: "IDCOM-1",
				Profile: "citizen-signing", KeyLabel: "cred-a", CertSerial: "0a", ChainDER: []byte{1}, NotAfter: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			// One SAD, 16 parallel consumers on two instances: one wins.
			h := bytes.Repeat([]byte{7}, 32)
			for round := range 5 {
				sad := fmt.Sprintf("sad-%d", round)
				if err := a.InsertSAD(ctx, sad, signing.SAD{CredentialID: "cred-a", HashAlg: "2.16.840.1.101.3.4.2.1", Hashes: [][]byte{h},
					NumSignatures: 1, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
					t.Fatal(err)
				}
				var won atomic.Int32
				var wg sync.WaitGroup
				for i := range 16 {
					s := a
					if i%2 == 1 {
						s = b
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := s.ConsumeSAD(ctx, sad, "cred-a", time.Now())
						switch {
						case err == nil:
							won.Add(1)
						case !errors.Is(err, signing.ErrNotFound):
							t.Errorf("consume: %v", err)
						}
					}()
				}
				wg.Wait()
				if n := won.Load(); n != 1 {
					t.Fatalf("round %d: the SAD was spent %d times", round, n)
				}
			}

			// Parallel wrong PINs through two managers: exactly the limit
			// is checked, then the PIN is locked.
			p := pin.DefaultParams()
			p.MemoryKiB, p.Time = 64, 1
			ma, err := pin.New(a, p)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := pin.New(b, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := ma.Set(ctx, "cred-a", "482916"); err != nil {
				t.Fatal(err)
			}
			var wrong atomic.Int32
			var wg sync.WaitGroup
			for i := range 16 {
				m := ma
				if i%2 == 1 {
					m = mb
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := m.Check(ctx, "cred-a", "000000")
					switch {
					case errors.Is(err, pin.ErrWrong):
						wrong.Add(1)
					case !errors.Is(err, pin.ErrLocked):
						t.Errorf("a wrong PIN: %v", err)
					}
				}()
			}
			wg.Wait()
			if n := wrong.Load(); int(n) != p.MaxFailures {
				t.Fatalf("%d wrong PINs checked on two instances, want %d", n, p.MaxFailures)
			}
			if err := mb.Check(ctx, "cred-a", "482916"); !errors.Is(err, pin.ErrLocked) {
				t.Fatalf("the right PIN after the lock: %v", err)
			}
		})
	}
}
