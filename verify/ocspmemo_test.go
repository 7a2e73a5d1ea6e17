package verify

import (
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
		for k := range rd.memo.m {
			n += len(k)
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
