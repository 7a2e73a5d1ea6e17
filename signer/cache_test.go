package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
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

// FuzzOCSPCertificates: any input, no panic, only certificate-shaped
// slices of the input out (seeds: real responses with and without a
// certificate in testdata/fuzz).
func FuzzOCSPCertificates(f *testing.F) {
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

// TestPlaceholderLearned: with a Cache, the second signature of a key gets
// a /Contents sized to the first (much smaller than the worst case), the
// output stays valid, and a placeholder learned too small is made again
// larger rather than failing.
func TestPlaceholderLearned(t *testing.T) {
	p := getPKI(t)
	in := testPDF(1, 0)
	o := signOpts(p, false, LevelBT)
	o.Validation.Cache = NewCache()
	first, err := SignBytes(context.Background(), in, o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := SignBytes(context.Background(), in, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) > len(first)-8000 {
		t.Fatalf("the learned placeholder saves too little: %d then %d bytes", len(first), len(second))
	}
	assertOpenSSL(t, p, second, true)
	assertPdfsig(t, p, second, 1)
	// Learned too small (a larger time-stamp unit later, say): signed anyway.
	key := placeholderKey(o.Chain[0], crypto.SHA256, true, false)
	o.Validation.Cache.sigSize[key] = 10
	third, err := SignBytes(context.Background(), in, o)
	if err != nil {
		t.Fatal(err)
	}
	assertOpenSSL(t, p, third, true)
	if n, _ := o.Validation.Cache.placeholder(key); n < 1000 {
		t.Fatalf("the cache did not learn the real size: %d", n)
	}
	// Under sole control one authorisation is one signature: the learned
	// size is not used, so there is never a second try asking again.
	o.Validation.Cache.sigSize[key] = 10
	asked := 0
	o.BeforeSign = func(context.Context, []byte, []byte) error { asked++; return nil }
	fourth, err := SignBytes(context.Background(), in, o)
	if err != nil {
		t.Fatal(err)
	}
	if asked != 1 {
		t.Fatalf("BeforeSign called %d times for one signature, want 1", asked)
	}
	assertOpenSSL(t, p, fourth, true)
}

// TestBeforeWrite: called once with the size of what is then written; its
// error stops everything, nothing written.
func TestBeforeWrite(t *testing.T) {
	p := getPKI(t)
	in := testPDF(1, 0)
	for _, doc := range []io.ReaderAt{Bytes(in), bytes.NewReader(in)} {
		o := signOpts(p, false, LevelBB)
		var sizes []int64
		o.BeforeWrite = func(n int64) error { sizes = append(sizes, n); return nil }
		var out bytes.Buffer
		res, err := Sign(context.Background(), doc, int64(len(in)), &out, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(sizes) != 1 || sizes[0] != int64(out.Len()) || res.Size != sizes[0] || !bytes.HasPrefix(out.Bytes(), in) {
			t.Fatalf("BeforeWrite saw %v, %d bytes written", sizes, out.Len())
		}
		o.BeforeWrite = func(int64) error { return errors.New("no audit") }
		out.Reset()
		if _, err := Sign(context.Background(), doc, int64(len(in)), &out, o); err == nil || out.Len() != 0 {
			t.Fatalf("BeforeWrite's error: %v, %d bytes written", err, out.Len())
		}
	}
}

func TestBytesReadAt(t *testing.T) {
	b := Bytes("0123456789")
	p := make([]byte, 4)
	if n, err := b.ReadAt(p, 2); n != 4 || err != nil || string(p) != "2345" {
		t.Fatalf("ReadAt(2) = %d %v %q", n, err, p)
	}
	if n, err := b.ReadAt(p, 8); n != 2 || err != io.EOF || string(p[:2]) != "89" {
		t.Fatalf("ReadAt(8) = %d %v", n, err)
	}
	if n, err := b.ReadAt(p, 10); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(10) = %d %v", n, err)
	}
	if _, err := b.ReadAt(p, -1); err == nil {
		t.Fatal("ReadAt(-1) succeeded")
	}
}

func TestCacheParseCertificate(t *testing.T) {
	p := getPKI(t)
	k := NewCache()
	a, err := k.parseCertificate(p.ca.Raw)
	if err != nil || !a.Equal(p.ca) {
		t.Fatalf("parse: %v", err)
	}
	if b, err := k.parseCertificate(p.ca.Raw); err != nil || b != a {
		t.Fatal("the second parse is not the remembered certificate")
	}
	for _, k := range []*Cache{k, nil} {
		if _, err := k.parseCertificate(p.ca.Raw[:100]); err == nil {
			t.Fatal("a truncated certificate parsed")
		}
	}
	if len(k.certs) != 1 {
		t.Fatalf("%d certificates remembered, want 1", len(k.certs))
	}
	// The remembered certificate is the cache's own: the buffer it was
	// cut from (a signature's CMS) is the caller's, reused or changed
	// after the call, and must not be kept alive by a shared entry.
	buf := bytes.Clone(p.ocspCert.Raw)
	c, err := k.parseCertificate(buf)
	if err != nil {
		t.Fatal(err)
	}
	clear(buf)
	if !bytes.Equal(c.Raw, p.ocspCert.Raw) {
		t.Fatal("the remembered certificate changed with the caller's buffer")
	}
}

// TestPinnedPlaceholder: with Options.Placeholder and Time fixed, two runs
// over the same input give the same document digest and DTBS (a signature
// prepared in one call and completed in another); a placeholder too small
// is an error, not a larger second try.
func TestPinnedPlaceholder(t *testing.T) {
	p := getPKI(t)
	in := testPDF(1, 0)
	o := signOpts(p, false, LevelBT)
	o.Validation.Cache = NewCache()
	o.Time = time.Now().UTC().Truncate(time.Second)
	o.Placeholder = MaxPlaceholder(o.Chain, o.Level)
	var dtbs, digests [][]byte
	o.BeforeSign = func(_ context.Context, d, x []byte) error {
		digests, dtbs = append(digests, bytes.Clone(d)), append(dtbs, bytes.Clone(x))
		return nil
	}
	for i := 0; i < 2; i++ {
		out, err := SignBytes(context.Background(), in, o)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			assertOpenSSL(t, p, out, true)
		}
	}
	if !bytes.Equal(dtbs[0], dtbs[1]) || !bytes.Equal(digests[0], digests[1]) {
		t.Fatal("the same input, time and placeholder gave another digest")
	}
	o.Placeholder = 200
	var out bytes.Buffer
	if _, err := Sign(context.Background(), Bytes(in), int64(len(in)), &out, o); !errors.Is(err, ErrOptions) || out.Len() != 0 {
		t.Fatalf("a placeholder too small: %v, %d bytes written", err, out.Len())
	}
	if len(dtbs) != 3 {
		t.Fatalf("the key was asked %d times, want 3 (no second try)", len(dtbs))
	}
}
