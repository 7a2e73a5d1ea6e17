package verify

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
)

// The OCSP memo outlives the request: documents whose DSS holds large
// blobs of anything in place of OCSP responses must not keep those bytes
// alive between requests beyond the memo's byte bound, whatever their
// number and size.
func TestOCSPMemoBoundedInBytes(t *testing.T) {
	rd := &revocationData{memo: &ocspMemo{}}
	c := &x509.Certificate{SerialNumber: big.NewInt(7)}
	issuer := &x509.Certificate{Raw: []byte("issuer")}
	kept := func() (n int) {
		rd.memo.mu.Lock()
		defer rd.memo.mu.Unlock()
		for k, e := range rd.memo.m {
			n += len(k) + len(e.der)
		}
		return n
	}
	// Many documents, each with a few distinct blobs of moderate size,
	// then some with very large ones.
	for i := range 600 {
		blob := make([]byte, 32<<10)
		_, _ = rand.Read(blob)
		if _, err := rd.parseOCSP(blob, c, issuer); err == nil {
			t.Fatalf("blob %d parsed as an OCSP response", i)
		}
		if n := kept(); n > ocspMemoBytes {
			t.Fatalf("after %d blobs of 32 KiB the memo keeps %d bytes (bound %d)", i+1, n, ocspMemoBytes)
		}
	}
	for i := range 20 {
		blob := make([]byte, 1<<20)
		_, _ = rand.Read(blob)
		_, _ = rd.parseOCSP(blob, c, issuer)
		if n := kept(); n > ocspMemoBytes {
			t.Fatalf("after %d blobs of 1 MiB the memo keeps %d bytes (bound %d)", i+1, n, ocspMemoBytes)
		}
	}
	// A blob seen again is answered from the memo, not counted twice.
	blob := make([]byte, 1000)
	_, _ = rand.Read(blob)
	_, err1 := rd.parseOCSP(blob, c, issuer)
	before := kept()
	_, err2 := rd.parseOCSP(blob, c, issuer)
	if err1 == nil || err2 == nil || kept() != before {
		t.Fatalf("a repeated blob: errors %v, %v; bytes %d then %d", err1, err2, before, kept())
	}
}

// A response kept in the memo refers to the memo's own copy of its DER,
// never to the caller's buffer: one cut from a signature's CMS (the
// revocation values of a signed attribute) would otherwise keep that
// whole CMS alive between requests, megabytes for a response of a few
// KB, beyond what the byte bound counts, and would change with it.
func TestOCSPMemoKeepsNothingOfTheCaller(t *testing.T) {
	p := newTestPKI(t)
	der := p.ocspFor(t, p.leaf)
	rd := &revocationData{memo: &ocspMemo{}}
	buf := make([]byte, 4<<20) // the CMS the response was cut from
	copy(buf[1000:], der)
	in := buf[1000 : 1000+len(der) : 1000+len(der)]
	resp, err := rd.parseOCSP(in, p.leaf, p.root)
	if err != nil {
		t.Fatal(err)
	}
	clear(buf) // the request's buffer is reused or freed
	again, err := rd.parseOCSP(der, p.leaf, p.root)
	if err != nil || again != resp {
		t.Fatalf("the second lookup: %v, same response %v", err, again == resp)
	}
	if !bytes.Equal(resp.Raw, der) || !bytes.Contains(der, resp.TBSResponseData) {
		t.Fatal("the memo's response changed with the caller's buffer: it refers to it (and keeps it alive)")
	}
}
