package store_test

import (
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
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestImportedCRLs: the root's imported CRL is kept per issuer, replaced
// only by a newer one, and read back byte for byte, on both dialects.
func TestImportedCRLs(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCRLSign | x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	root, _ := x509.ParseCertificate(der)
	now := time.Now()
	newCRL := func(n int64) *crl.ImportedCRL {
		// 2^130 + n: CRL numbers may exceed 64 bits.
		num := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 130), big.NewInt(n))
		raw, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: num, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(90 * 24 * time.Hour)}, root, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := crl.CheckImported("root", raw, root, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first, second := newCRL(1), newCRL(2)
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			st := db.ImportedCRLs()
			if _, err := st.ImportedCRL(ctx, "root"); !errors.Is(err, crl.ErrNoImported) || !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("nothing imported: %v", err)
			}
			for i, c := range []*crl.ImportedCRL{first, first, second} {
				if err := st.SaveImportedCRL(ctx, c, "cli:op", now); err != nil {
					t.Fatalf("save #%d: %v", i, err)
				}
			}
			if err := st.SaveImportedCRL(ctx, first, "cli:op", now); !errors.Is(err, crl.ErrNotNewer) {
				t.Fatalf("older CRL: %v", err)
			}
			got, err := st.ImportedCRL(ctx, "root")
			if err != nil || string(got.DER) != string(second.DER) || got.Number.Cmp(second.Number) != 0 ||
				!got.NextUpdate.Equal(second.NextUpdate.Truncate(time.Second)) || got.Issuer != "root" {
				t.Fatalf("read back: %v %+v", err, got)
			}
			// When it was imported comes back: the nodes switch to it together.
			if !got.ImportedAt.Equal(now.Truncate(time.Second)) {
				t.Fatalf("read back imported at %s, want %s", got.ImportedAt, now.Truncate(time.Second))
			}
		})
	}
}

// TestLiveUntil: the last notAfter of a CA's certificates, its OCSP
// responders left out.
func TestLiveUntil(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			if _, ok, err := certs.LiveUntil(ctx, "citizen", policies.ProfileOCSPResponder); ok || err != nil {
				t.Fatalf("no certificates: %v %v", ok, err)
			}
			a := newAuthority(t, certs)
			got, err := a.Issue(ctx, citizenRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			until, ok, err := certs.LiveUntil(ctx, "citizen", policies.ProfileOCSPResponder)
			if err != nil || !ok || !until.Equal(got.Certificate.NotAfter) {
				t.Fatalf("LiveUntil = %s %v %v, want %s", until, ok, err, got.Certificate.NotAfter)
			}
			if _, ok, _ := certs.LiveUntil(ctx, "citizen", policies.ProfileCitizenAuth); ok {
				t.Fatal("the excepted profile was counted")
			}
		})
	}
}
