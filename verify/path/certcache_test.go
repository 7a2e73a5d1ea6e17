package path

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

// The cache outlives the request: documents carrying large certificates
// (anyone can make one) must not keep their bytes alive between requests
// beyond the cache's byte bound, however many there are.
func TestCertificateCacheBoundedInBytes(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	filler := make([]byte, 40<<10)
	mk := func(i int, extra []byte) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "big"},
			NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0),
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: extra}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	c := NewCertificateCache(1024)
	kept := func() (n int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for k, cert := range c.m {
			n += len(k) + len(cert.Raw)
		}
		return n
	}
	for i := range 600 {
		if _, err := c.Parse(mk(i, filler)); err != nil {
			t.Fatal(err)
		}
		if n := kept(); n > 16<<20 {
			t.Fatalf("after %d certificates of 40 KiB the cache keeps %d bytes", i+1, n)
		}
	}
	huge := mk(1000, make([]byte, 2<<20))
	for range 3 {
		if _, err := c.Parse(huge); err != nil {
			t.Fatal(err)
		}
	}
	if n := kept(); n > 16<<20 {
		t.Fatalf("the cache keeps %d bytes", n)
	}
	// Small certificates are still remembered: the same one comes back.
	small := mk(2000, []byte{5, 0})
	a, _ := c.Parse(small)
	b, _ := c.Parse(small)
	if a != b {
		t.Fatal("a small certificate was parsed twice")
	}
}
