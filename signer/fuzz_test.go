package signer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// FuzzSign signs arbitrary input at B-B: it must never panic, must fail
// with a typed error, and must write nothing when it fails.
func FuzzSign(f *testing.F) {
	f.Add(testPDF(1, 0))
	f.Add(testPDF(2, 10))
	p := getPKI(f)
	o := signOpts(p, false, LevelBB)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		var doc io.ReaderAt = bytes.NewReader(in)
		if len(in)%2 == 0 { // the in-memory path, parsed in place
			doc = Bytes(in)
		}
		_, err := Sign(context.Background(), doc, int64(len(in)), &out, o)
		if err == nil {
			if !bytes.HasPrefix(out.Bytes(), in) {
				t.Fatal("original bytes changed")
			}
			return
		}
		if out.Len() != 0 {
			t.Fatal("output written on failure")
		}
		for _, want := range []error{ErrNotPDF, ErrMalformed, ErrEncrypted, ErrCertificationForbids, ErrOptions} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	})
}

// TestMutatedPDFs signs thousands of randomly damaged copies of valid PDFs
// (classic and xref-stream): no panic, typed errors, nothing written.
func TestMutatedPDFs(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBB)
	seeds := [][]byte{testPDF(2, 0), toXrefStream(t, testPDF(2, 0))}
	rnd := rand.New(rand.NewPCG(1, 2))
	signed := 0
	for i := 0; i < 3000; i++ {
		in := append([]byte(nil), seeds[i%2]...)
		switch rnd.IntN(3) {
		case 0:
			in = in[:rnd.IntN(len(in))]
		default:
			for k := 0; k < 1+rnd.IntN(4); k++ {
				in[rnd.IntN(len(in))] = byte(rnd.IntN(256))
			}
		}
		var out bytes.Buffer
		var doc io.ReaderAt = bytes.NewReader(in)
		if len(in)%2 == 0 { // the in-memory path, parsed in place
			doc = Bytes(in)
		}
		_, err := Sign(context.Background(), doc, int64(len(in)), &out, o)
		if err == nil {
			signed++
			continue
		}
		if out.Len() != 0 {
			t.Fatal("output written on failure")
		}
		if !errors.Is(err, ErrNotPDF) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrEncrypted) && !errors.Is(err, ErrOptions) {
			t.Fatalf("untyped error: %v", err)
		}
	}
	t.Logf("%d of 3000 damaged PDFs still signable", signed)
}
