package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// The Cache lives as long as the signing service and parses the
// certificates of the documents callers send to be extended: large
// certificates (anyone can make one) must not keep their bytes alive
// beyond the cache's byte bound, however many there are.
func TestCacheCertificatesBoundedInBytes(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(i, extra int) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "big"},
			NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0),
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, extra)}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	k := NewCache()
	kept := func() (n int) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, c := range k.certs {
			n += len(c.Raw)
		}
		return n
	}
	for i := range 400 {
		if _, err := k.parseCertificate(mk(i, 40<<10)); err != nil {
			t.Fatal(err)
		}
		if n := kept(); n > 8<<20 {
			t.Fatalf("after %d certificates of 40 KiB the cache keeps %d bytes", i+1, n)
		}
	}
	huge := mk(1000, 4<<20)
	for range 3 {
		if _, err := k.parseCertificate(huge); err != nil {
			t.Fatal(err)
		}
	}
	if n := kept(); n > 8<<20 {
		t.Fatalf("the cache keeps %d bytes", n)
	}
}
