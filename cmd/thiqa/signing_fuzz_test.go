package main

import (
	"bytes"
	"crypto"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store"
)

// FuzzCSCHashes feeds arbitrary hashes and algorithm OIDs to the CSC
// request checks: nothing panics, and an accepted hash has the size of the
// algorithm it is taken for.
func FuzzCSCHashes(f *testing.F) {
	f.Add("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", "2.16.840.1.101.3.4.2.1")
	f.Add("AAAA,BBBB", "")
	f.Add("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA", "1.2.3")
	f.Fuzz(func(t *testing.T, list, oid string) {
		hashes, h, err := decodeHashes(strings.Split(list, ","), oid, 100)
		if err != nil {
			return
		}
		if h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512 {
			t.Fatalf("accepted hash algorithm %v", h)
		}
		for _, x := range hashes {
			if len(x) != h.Size() {
				t.Fatalf("accepted a %d-byte %v hash", len(x), h)
			}
		}
		sad := &store.SAD{HashAlg: hashOID(h), Hashes: hashes[:len(hashes)/2], NumSignatures: len(hashes)}
		if err := sadCovers(sad, hashOID(h), hashes); err == nil && len(hashes) > 0 && len(hashes)/2 < len(hashes) {
			// Every hash must have been matched by a distinct authorised one.
			t.Fatalf("a SAD for %d hashes covered %d", len(sad.Hashes), len(hashes))
		}
	})
}

// FuzzReadDocument feeds arbitrary bodies to the intake of the signing
// endpoints, with and without an announced length.
func FuzzReadDocument(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n%%EOF\n"), int64(15))
	f.Add([]byte("not a pdf"), int64(-1))
	f.Add([]byte("%PDF-"), int64(100))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte, size int64) {
		if size < -1 {
			size = -1
		}
		// A reused buffer (holding an earlier body) or none.
		var buf []byte
		if len(body)%2 == 0 {
			buf = bytes.Repeat([]byte{'x'}, 64)
		}
		in, cleanup, err := readDocument(bytes.NewReader(body), size, dir, 1<<20, buf)
		defer cleanup()
		if err != nil {
			return
		}
		if in.size != int64(len(body)) || !bytes.Contains(body[:min(len(body), 1024)], []byte("%PDF-")) {
			t.Fatalf("accepted %d of %d bytes (announced %d)", in.size, len(body), size)
		}
		got := make([]byte, in.size)
		if n, _ := in.r.ReadAt(got, 0); int64(n) != in.size || !bytes.Equal(got, body) {
			t.Fatal("the document read is not the body")
		}
	})
}
