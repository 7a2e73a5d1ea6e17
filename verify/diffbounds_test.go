package verify

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// TestDiffBudgetPerDocument: every signature compares every object of the
// revisions after it, so 255 fields pointing at one signature and 100,000
// objects after it cost 16 s of CPU for 5 MB. The objects compared are now
// bounded over the whole document: past the bound a signature fails.
func TestDiffBudgetPerDocument(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	const fields, filler = 8, 2 * maxDiffObjects / 3
	objs := map[int]string{}
	refs := []string{"4 0 R"}
	for i := range fields - 1 {
		objs[1000+i] = fmt.Sprintf("<< /FT /Sig /T (f%d) /V 5 0 R >>", i)
		refs = append(refs, fmt.Sprintf("%d 0 R", 1000+i))
	}
	for i := range filler {
		objs[2000+i] = "null"
	}
	objs[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + strings.Join(refs, " ") + "] /SigFlags 3 >> >>"
	r := verifyBytes(t, opts, appendUpdate(p.signPDF(t, signOpts{}), objs, 1))
	if len(r.Signatures) != fields {
		t.Fatalf("want %d signatures, got %d: %v", fields, len(r.Signatures), r.Errors)
	}
	if got := r.Signatures[0].Indication; got != report.TotalPassed {
		t.Fatalf("the first signature is within the bound: want TOTAL-PASSED, got %s %v", got, r.Signatures[0].Modifications)
	}
	last := r.Signatures[fields-1]
	if last.Indication != report.TotalFailed || !strings.Contains(strings.Join(last.Modifications, "\n"), "too many changed objects") {
		t.Fatalf("the last signature is past the bound: want TOTAL-FAILED for too many changed objects, got %s %v", last.Indication, last.Modifications)
	}
}

// TestModificationsBounded: each added annotation's subtype made its own
// message, repeated in every signature's entry, so one update could put
// the file into the report 256 times. The list is cut after
// maxModifications distinct changes.
func TestModificationsBounded(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	objs := map[int]string{}
	const n = 200 // over maxModifications
	for i := range n {
		objs[100+i] = fmt.Sprintf("<< /Type /Annot /Subtype /S%d /Rect [0 0 1 1] >>", i)
	}
	r := verifyBytes(t, opts, appendUpdate(p.signPDF(t, signOpts{}), objs, 1))
	if len(r.Signatures) != 1 {
		t.Fatalf("want 1 signature, got %d: %v", len(r.Signatures), r.Errors)
	}
	m := r.Signatures[0].Modifications
	if len(m) != maxModifications+1 || m[len(m)-1] != fmt.Sprintf("and %d more changes", n-maxModifications) {
		t.Fatalf("want %d changes and a count of the rest, got %d ending %q", maxModifications, len(m), m[len(m)-1])
	}
}

// TestFieldNameBounded: the name of every changed form field was built
// from its whole chain of parents, 32 partial names of any length, for each
// of up to 400,000 changed objects. It is now cut at a kilobyte.
func TestFieldNameBounded(t *testing.T) {
	p := newTestPKI(t)
	long := strings.Repeat("A", 100<<10)
	objs := map[int]string{}
	for i := range 31 {
		objs[200+i] = fmt.Sprintf("<< /T (%s) /Parent %d 0 R >>", long, 201+i)
	}
	objs[231] = "<< /T (top) >>"
	doc := appendUpdate(p.signPDF(t, signOpts{}), objs, 1)
	f, err := pdf.Open(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	name := fieldName(f, f.Dict(pdf.Ref{Num: 200}, -1), -1)
	if len(name) > 1024 {
		t.Fatalf("a name of %d bytes (%v): want at most 1024", len(name), time.Since(start))
	}
}
