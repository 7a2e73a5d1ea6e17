package store_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

func TestSigningCredentials(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			s := db.SigningCredentials()

			if _, err := s.Credential(ctx, "cred-x"); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, signing.ErrNotFound) {
				t.Fatalf("unknown credential: %v", err)
			}
			c := signing.CredentialRecord{ID: "cred-a", OwnerKind: signing.OwnerCitizen, OwnerID: "IDCOM-1", Profile: "citizen-signing",
				KeyLabel: "cred-a", CertSerial: "0a", ChainDER: []byte{1, 2, 3}, NotAfter: time.Now().Add(time.Hour)}
			got, err := s.RegisterCredential(ctx, c)
			if err != nil || got.OwnerID != "IDCOM-1" || got.PINSet || !bytes.Equal(got.ChainDER, c.ChainDER) {
				t.Fatalf("register: %+v %v", got, err)
			}
			// A second registration does not replace the first.
			c2 := c
			c2.OwnerID = "IDCOM-2"
			if got, err = s.RegisterCredential(ctx, c2); err != nil || got.OwnerID != "IDCOM-1" {
				t.Fatalf("re-register: %+v %v", got, err)
			}
			if _, err := s.RegisterCredential(ctx, signing.CredentialRecord{ID: "x", OwnerKind: "nobody"}); err == nil {
				t.Fatal("bad owner kind accepted")
			}
			list, err := s.CredentialsOf(ctx, signing.OwnerCitizen, "IDCOM-1")
			if err != nil || len(list) != 1 || list[0].ID != "cred-a" {
				t.Fatalf("list: %v %v", list, err)
			}
			if list, _ := s.CredentialsOf(ctx, signing.OwnerAgency, "IDCOM-1"); len(list) != 0 {
				t.Fatalf("agency list: %v", list)
			}
			if u, err := s.UnregisteredCredentials(ctx, 10); err != nil || len(u) != 0 {
				t.Fatalf("unregistered: %v %v", u, err)
			}

			// PINs through package pin, with a cheap hash.
			p := pin.DefaultParams()
			p.MemoryKiB, p.Time = 64, 1
			m, err := pin.New(s, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Check(ctx, "cred-a", "482916"); !errors.Is(err, pin.ErrNotSet) {
				t.Fatalf("before set: %v", err)
			}
			if err := m.Set(ctx, "cred-a", "482916"); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(ctx, "cred-a", "583920"); !errors.Is(err, pin.ErrAlreadySet) {
				t.Fatalf("second set: %v", err)
			}
			if err := m.Set(ctx, "cred-none", "583920"); !errors.Is(err, pin.ErrAlreadySet) {
				t.Fatalf("set on unknown credential: %v", err)
			}
			if err := m.Check(ctx, "cred-a", "000000"); !errors.Is(err, pin.ErrWrong) {
				t.Fatalf("wrong: %v", err)
			}
			if err := m.Check(ctx, "cred-a", "482916"); err != nil {
				t.Fatalf("right: %v", err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			wrong := 0
			for i := 0; i < 12; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if errors.Is(m.Check(ctx, "cred-a", "000000"), pin.ErrWrong) {
						mu.Lock()
						wrong++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wrong != 5 {
				t.Fatalf("%d wrong tries evaluated, want 5", wrong)
			}
			if err := m.Check(ctx, "cred-a", "482916"); !errors.Is(err, pin.ErrLocked) {
				t.Fatalf("after lockout: %v", err)
			}
			if got, _ := s.Credential(ctx, "cred-a"); !got.PINSet || got.PINFailures != 5 {
				t.Fatalf("state: %+v", got)
			}

			// SADs: once, unexpired, for their credential only.
			now := time.Now()
			a := signing.SAD{CredentialID: "cred-a", HashAlg: "2.16.840.1.101.3.4.2.1", Hashes: [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)},
				NumSignatures: 2, ExpiresAt: now.Add(time.Minute)}
			if err := s.InsertSAD(ctx, "sad-1", a); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertSAD(ctx, "sad-2", signing.SAD{CredentialID: "cred-a", HashAlg: "x", Hashes: [][]byte{{9}}, NumSignatures: 1, ExpiresAt: now.Add(-time.Second)}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ConsumeSAD(ctx, "sad-1", "cred-b", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("other credential: %v", err)
			}
			got2, err := s.ConsumeSAD(ctx, "sad-1", "cred-a", now)
			if err != nil || len(got2.Hashes) != 2 || !bytes.Equal(got2.Hashes[1], a.Hashes[1]) || got2.NumSignatures != 2 {
				t.Fatalf("consume: %+v %v", got2, err)
			}
			if _, err := s.ConsumeSAD(ctx, "sad-1", "cred-a", now); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, signing.ErrNotFound) {
				t.Fatalf("reuse: %v", err)
			}
			if _, err := s.ConsumeSAD(ctx, "sad-2", "cred-a", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired: %v", err)
			}
			if n, err := s.DeleteExpiredSADs(ctx, now); err != nil || n != 1 {
				t.Fatalf("delete expired: %d %v", n, err)
			}

			// Revocations as the service reads them on every use.
			serial := serialN(7)
			seedCert(t, db, serial, "citizen", "issued", 0)
			if revoked, err := s.CertificateRevoked(ctx, store.SerialKey(serial)); err != nil || revoked {
				t.Fatalf("before revocation: %v %v", revoked, err)
			}
			if _, err := db.Revocations().Revoke(ctx, store.SerialKey(serial), 1, "officer-1", now, nil); err != nil {
				t.Fatal(err)
			}
			if revoked, err := s.CertificateRevoked(ctx, strings.ToUpper(store.SerialKey(serial))); err != nil || !revoked {
				t.Fatalf("after revocation: %v %v", revoked, err)
			}
			if revoked, err := s.CertificateRevoked(ctx, "not hex"); err != nil || revoked {
				t.Fatalf("a malformed serial: %v %v", revoked, err)
			}
		})
	}
}
