package signer

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

func TestOCSPCertificates(t *testing.T) {
	p := getPKI(t)
	with, err := p.OCSP(context.Background(), p.ecLeaf, p.ca)
	if err != nil {
		t.Fatal(err)
	}
	got := ocspCertificates(with)
	if len(got) != 1 || !bytes.Equal(got[0], p.ocspCert.Raw) {
		t.Fatalf("got %d certificates, want the responder's", len(got))
	}
	// Signed by the CA itself: no certificate in the response.
	without, err := ocsp.CreateResponse(p.ca, p.ca, ocsp.Response{
		Status: ocsp.Good, SerialNumber: big.NewInt(7), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
	}, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := ocspCertificates(without); got != nil {
		t.Fatalf("a response without certificates gave %d", len(got))
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x03, 0x0a, 0x01, 0x06}, with[:len(with)/2], with[:len(with)-1]} {
		if got := ocspCertificates(bad); got != nil {
			t.Fatalf("malformed input %x gave %d certificates", bad, len(got))
		}
	}
}

func FuzzOCSPCertificates(f *testing.F) {
	p := getPKI(f)
	r, err := p.OCSP(context.Background(), p.ecLeaf, p.ca)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r)
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x06})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range ocspCertificates(in) {
			if len(c) == 0 || c[0] != 0x30 || !bytes.Contains(in, c) {
				t.Fatalf("bad certificate slice %x", c)
			}
		}
	})
}

func TestCacheSelfSigned(t *testing.T) {
	p := getPKI(t)
	// Self-issued but not self-signed: the root's name, another key.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: p.root.Subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	parent := &x509.Certificate{Subject: p.root.Subject, PublicKey: p.caKey.Public()}
	fake, err := create(tmpl, parent, p.ecKey.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	k := NewCache()
	for round := 0; round < 2; round++ { // the second round answers from memory
		for _, tc := range []struct {
			c    *x509.Certificate
			want bool
		}{{p.root, true}, {p.ca, false}, {p.ecLeaf, false}, {fake, false}} {
			if got := k.isSelfSigned(tc.c); got != tc.want {
				t.Fatalf("round %d, %s: cached %v, want %v", round, tc.c.Subject, got, tc.want)
			}
			var none *Cache
			if got := none.isSelfSigned(tc.c); got != tc.want {
				t.Fatalf("%s: uncached %v, want %v", tc.c.Subject, got, tc.want)
			}
		}
	}
	if n := len(k.selfSigned); n != 2 { // only the two self-issued ones are remembered
		t.Fatalf("cache holds %d entries, want 2", n)
	}
}

// TestDSSWithCache signs at B-LT with a shared Cache: the DSS holds the
// same material as without it, the OCSP responder's certificate included.
func TestDSSWithCache(t *testing.T) {
	p := getPKI(t)
	certsOf := func(o Options) map[string]bool {
		out, err := SignBytes(context.Background(), testPDF(1, 0), o)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := pdfdoc.Open(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatal(err)
		}
		cat, _ := rd.Catalog()
		dss, _ := rd.ResolveDict(cat["DSS"])
		arr, _ := dss["Certs"].(pdfdoc.Array)
		set := map[string]bool{}
		for _, r := range arr {
			o, _ := rd.Resolve(r)
			s, ok := o.(*pdfdoc.Stream)
			if !ok {
				t.Fatal("DSS certificate is not a stream")
			}
			b, err := rd.StreamData(s, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			set[string(b)] = true
		}
		return set
	}
	plain := certsOf(signOpts(p, false, LevelBLT))
	o := signOpts(p, false, LevelBLT)
	o.Validation.Cache = NewCache()
	for i := 0; i < 3; i++ {
		cached := certsOf(o)
		if len(cached) != len(plain) {
			t.Fatalf("with a cache the DSS has %d certificates, without %d", len(cached), len(plain))
		}
		for c := range plain {
			if !cached[c] {
				t.Fatal("a certificate of the uncached DSS is missing")
			}
		}
		if !cached[string(p.ocspCert.Raw)] || !cached[string(p.root.Raw)] {
			t.Fatal("the DSS lacks the OCSP responder's or the root's certificate")
		}
	}
}
