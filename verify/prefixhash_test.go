package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// withSigRevision appends a revision holding signature value num: a copy of
// the CMS hexCMS with a ByteRange over the whole file up to that revision's
// end but its own /Contents.
func withSigRevision(doc []byte, num int, hexCMS string) []byte {
	start := len(doc)
	ph := "[0 0000000000 0000000000 0000000000]"
	body := "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange " + ph + " /Contents <" + hexCMS + "> >>"
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
