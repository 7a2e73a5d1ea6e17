package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// withSigRevision appends a revision holding signature value num: a copy of
// the CMS hexCMS with a ByteRange over the whole file up to that revision's
// end but its own /Contents.
func withSigRevision(doc []byte, num int, hexCMS string) []byte {
	return withValueRevision(doc, num, hexCMS, "/Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached")
}

// withValueRevision is withSigRevision with the signature value's type
// entries kind (a /DocTimeStamp and its token, say).
func withValueRevision(doc []byte, num int, hexCMS, kind string) []byte {
	start := len(doc)
	ph := "[0 0000000000 0000000000 0000000000]"
	body := "<< " + kind + " /ByteRange " + ph + " /Contents <" + hexCMS + "> >>"
	out := appendUpdate(doc, map[int]string{num: body}, 1)
	at := start + bytes.Index(out[start:], []byte("/Contents <")) + len("/Contents ")
	end := at + 2 + len(hexCMS)
	copy(out[start+bytes.Index(out[start:], []byte(ph)):], fmt.Sprintf("[0 %010d %010d %010d]", at, end, len(out)-end))
	return out
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r *bytes.Reader
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestSignaturesHashThePrefixOnce: each signature's ByteRange starts with
// the file's first bytes, so 256 signatures, one per revision, over a
// 64 MiB file hashed 16 GiB (15 s of CPU for one upload). The hash of
// that prefix is now kept between the signatures of a document.
func TestSignaturesHashThePrefixOnce(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	signed := p.signPDF(t, signOpts{padding: 4 << 20})
	i := bytes.Index(signed, []byte("/Contents <")) + len("/Contents <")
	hexCMS := string(signed[i : i+bytes.IndexByte(signed[i:], '>')])
	doc := signed
	refs := []string{"4 0 R"}
	fields := map[int]string{}
	const n = 64
	for k := range n {
		doc = withSigRevision(doc, 10000+k, hexCMS)
		fields[20000+k] = fmt.Sprintf("<< /FT /Sig /T (s%d) /V %d 0 R >>", k, 10000+k)
		refs = append(refs, fmt.Sprintf("%d 0 R", 20000+k))
	}
	fields[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + strings.Join(refs, " ") + "] /SigFlags 3 >> >>"
	doc = appendUpdate(doc, fields, 1)
	r := &countingReader{r: bytes.NewReader(doc)}
	rep, err := New(opts).VerifyPDF(context.Background(), r, int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signatures) != n+1 || rep.Signatures[0].Indication != report.TotalPassed ||
		rep.Signatures[1].SubIndication != report.HashFailure {
		t.Fatalf("want the real signature intact and %d copies failing on their digest: %s", n, summary(rep))
	}
	if got := r.n.Load(); got > 3*int64(len(doc)) {
		t.Fatalf("read %d bytes of a %d-byte file for %d signatures: want the prefix hashed once", got, len(doc), n+1)
	}
}

// TestHashRangesMatchesPlainHashing hashes odd ByteRanges in a hostile
// order with one document's shared states and compares each digest with
// one computed directly over the concatenated ranges.
func TestHashRangesMatchesPlainHashing(t *testing.T) {
	file := make([]byte, 3<<20+12345)
	for i := range file {
		file[i] = byte(i*7 + i>>9)
	}
	r := bytes.NewReader(file)
	size := int64(len(file))
	cases := [][]int64{
		{0, size},
		{0, 100, 200, size - 200},
		{0, 2 << 20, 2<<20 + 10, 1000},
		{0, 1 << 20, 3 << 20, 5},
		{0, 700000},                    // shorter than the kept prefix
		{0, 65536},                     // exactly a buffer
		{0, 1},                         // one byte
		{0, 1<<20 + 1, 10, 20},         // second range before the first ends
		{500, 1000, 0, 300},            // not starting at 0
		{0, 3000, 1000, 5000},          // overlapping
		{0, 1 << 20, 1 << 20, 1 << 20}, // adjacent
		{0, 2<<20 + 77},
		{0, size - 1},
		{0, 0, 0, 10},
	}
	algs := []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA1, crypto.SHA224}
	want := func(br []int64, h crypto.Hash) []byte {
		var b []byte
		for i := 0; i+1 < len(br); i += 2 {
			b = append(b, file[br[i]:br[i]+br[i+1]]...)
		}
		d := h.New()
		d.Write(b)
		return d.Sum(nil)
	}
	var bufs sync.Pool
	for round, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, {13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, {4, 0, 6, 2, 11, 5, 12, 1, 9, 3, 10, 7, 13, 8}} {
		p := newPrefixHashes(size)
		for j, i := range order {
			for a, h := range algs {
				if (j+a)%2 == 1 && round < 2 {
					continue // vary which algorithms see which prefixes first
				}
				got, err := hashRanges(r, cases[i], h, &bufs, &p)
				if err != nil {
					t.Fatalf("round %d %v %v: %v", round, cases[i], h, err)
				}
				if !bytes.Equal(got, want(cases[i], h)) {
					t.Fatalf("round %d: ByteRange %v with %v: wrong digest", round, cases[i], h)
				}
			}
		}
	}
	p := newPrefixHashes(size)
	if _, err := hashRanges(r, []int64{0, size + 1}, crypto.SHA256, &bufs, &p); err == nil {
		t.Fatal("a range beyond the file was hashed")
	}
	if got, err := hashRanges(r, []int64{0, 5000}, crypto.SHA256, &bufs, &p); err != nil || !bytes.Equal(got, want([]int64{0, 5000}, crypto.SHA256)) {
		t.Fatalf("after a failed range: %v", err)
	}
}

// TestPrefixHashedOnceInAnyOrder: document timestamps are validated
// newest first, longest ByteRange first, so each shorter one found no kept
// state and hashed its prefix again: a B-LTA document with many archive
// timestamps, or a hostile one with 256, hashed the file once per
// timestamp. States kept along the way let every range resume close by.
func TestPrefixHashedOnceInAnyOrder(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	signed := p.signPDF(t, signOpts{padding: 4 << 20})
	ts := p.appendDocTimestamp(t, signed, "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 20 0 R] /SigFlags 3 >> >>")
	i := len(signed) + bytes.Index(ts[len(signed):], []byte("/Contents <")) + len("/Contents <")
	hexTST := string(ts[i : i+bytes.IndexByte(ts[i:], '>')])
	doc := ts
	refs := []string{"4 0 R", "20 0 R"}
	fields := map[int]string{}
	const n = 32
	for k := range n {
		doc = withValueRevision(doc, 10000+k, hexTST, "/Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161")
		fields[20000+k] = fmt.Sprintf("<< /FT /Sig /T (ts%d) /V %d 0 R >>", k, 10000+k)
		refs = append(refs, fmt.Sprintf("%d 0 R", 20000+k))
	}
	fields[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + strings.Join(refs, " ") + "] /SigFlags 3 >> >>"
	doc = appendUpdate(doc, fields, 1)
	r := &countingReader{r: bytes.NewReader(doc)}
	rep, err := New(opts).VerifyPDF(context.Background(), r, int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signatures) != n+2 {
		t.Fatalf("want %d signatures: %s", n+2, summary(rep))
	}
	for _, s := range rep.Signatures {
		if (s.Field == "Signature1" || s.Field == "DocTS") && s.Indication != report.TotalPassed {
			t.Fatalf("a real signature did not pass: %s", summary(rep))
		}
		if strings.HasPrefix(s.Field, "ts") && s.SubIndication != report.HashFailure {
			t.Fatalf("a copied timestamp did not fail on its digest: %s", summary(rep))
		}
	}
	if got := r.n.Load(); got > 3*int64(len(doc)) {
		t.Fatalf("read %d bytes of a %d-byte file for %d signatures, longest first: want the prefix hashed once", got, len(doc), n+2)
	}
}

// TestSharedTailHashedWithinBudget: signatures defined in one early
// revision may each cover, after their own /Contents, the same large tail
// up to the end of the file. Those second ranges start at different bytes
// and share nothing, so 64 of them over a 4 MiB tail hashed 256 MiB. The
// bytes a document's signatures hash together are now bounded.
func TestSharedTailHashedWithinBudget(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	signed := p.signPDF(t, signOpts{})
	i := bytes.Index(signed, []byte("/Contents <")) + len("/Contents <")
	hexCMS := string(signed[i : i+bytes.IndexByte(signed[i:], '>')])
	ph := "[0 0000000000 0000000000 0000000000]"
	const n = 64
	values := map[int]string{}
	refs := []string{"4 0 R"}
	fields := map[int]string{}
	for k := range n {
		values[10000+k] = "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange " + ph + " /Contents <" + hexCMS + "> >>"
		fields[20000+k] = fmt.Sprintf("<< /FT /Sig /T (s%d) /V %d 0 R >>", k, 10000+k)
		refs = append(refs, fmt.Sprintf("%d 0 R", 20000+k))
	}
	doc := appendUpdate(signed, values, 1)
	fields[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + strings.Join(refs, " ") + "] /SigFlags 3 >> >>"
	tail := strings.Repeat("x", 4<<20)
	fields[30000] = fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(tail), tail)
	doc = appendUpdate(doc, fields, 1)
	for at := len(signed); ; {
		j := bytes.Index(doc[at:], []byte(ph))
		if j < 0 || at+j > len(signed)+len(values)*(len(hexCMS)+200) {
			break
		}
		c := at + j + bytes.Index(doc[at+j:], []byte("/Contents <")) + len("/Contents ")
		end := c + 2 + len(hexCMS)
		copy(doc[at+j:], fmt.Sprintf("[0 %010d %010d %010d]", c, end, len(doc)-end))
		at = end
	}
	r := &countingReader{r: bytes.NewReader(doc)}
	rep, err := New(opts).VerifyPDF(context.Background(), r, int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signatures) != n+1 || rep.Indication == report.TotalPassed {
		t.Fatalf("want %d signatures and no pass: %s", n+1, summary(rep))
	}
	hashed := 0
	for _, s := range rep.Signatures[1:] {
		if s.Indication == report.TotalPassed {
			t.Fatalf("a copy passed: %s", summary(rep))
		}
		if s.SubIndication == report.HashFailure {
			hashed++
		}
	}
	if hashed == 0 {
		t.Fatalf("no copy reached its digest (the attack is not built): %s", summary(rep))
	}
	if got := r.n.Load(); got > 16*int64(len(doc)) {
		t.Fatalf("read %d bytes of a %d-byte file for %d signatures sharing its tail", got, len(doc), n+1)
	}
}
