package verify

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// sharedKidsTree returns objects first..first+levels: each an array of two
// direct field dictionaries (partial name t) whose /Kids is the next array.
// Direct dictionaries are not de-duplicated, so walking it visits 2^levels
// fields from a few hundred bytes per level.
func sharedKidsTree(first, levels int, t string) map[int]string {
	objs := map[int]string{}
	for i := first; i < first+levels; i++ {
		objs[i] = fmt.Sprintf("[<< /T (%s) /Kids %d 0 R >> << /T (%s) /Kids %d 0 R >>]", t, i+1, t, i+1)
	}
	objs[first+levels] = "[]"
	return objs
}

// verifyWithin verifies doc and fails the test when that takes longer than d.
func verifyWithin(t *testing.T, opts Options, doc []byte, d time.Duration) *report.Report {
	t.Helper()
	done := make(chan *report.Report, 1)
	go func() { done <- verifyBytes(t, opts, doc) }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("verification of %d bytes still running after %v", len(doc), d)
		return nil
	}
}

// TestFieldTreeExplosion: a field tree of arrays whose two direct kids
// share the next array took 2^40 steps (for ever) from a 20 KB upload; the
// walk now stops after a bounded number of fields and the document fails.
func TestFieldTreeExplosion(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	objs := sharedKidsTree(101, 40, "x")
	objs[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R << /Kids 101 0 R >>] /SigFlags 3 >> >>"
	r := verifyWithin(t, opts, appendUpdate(p.signPDF(t, signOpts{}), objs, 1), 30*time.Second)
	if r.Indication != report.TotalFailed || r.SubIndication != report.FormatFailure {
		t.Fatalf("want TOTAL-FAILED/FORMAT_FAILURE, got %s/%s %v", r.Indication, r.SubIndication, r.Errors)
	}
}

// TestLongFieldNames: every level of the tree adds its partial name to the
// fully qualified one, so 100 KB names down a deep tree cost gigabytes; a
// name is now cut at a kilobyte.
func TestLongFieldNames(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	long := strings.Repeat("A", 5000)
	objs := map[int]string{
		1:   "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 100 0 R] /SigFlags 3 >> >>",
		100: fmt.Sprintf("<< /T (%s) /Kids [101 0 R] >>", long),
		101: fmt.Sprintf("<< /FT /Sig /T (%s) /V 5 0 R >>", long),
	}
	r := verifyBytes(t, opts, appendUpdate(p.signPDF(t, signOpts{}), objs, 1))
	if len(r.Signatures) != 2 {
		t.Fatalf("want 2 signatures, got %d: %v", len(r.Signatures), r.Errors)
	}
	for _, s := range r.Signatures {
		if len(s.Field) > 1024 {
			t.Fatalf("field name of %d bytes: want at most 1024", len(s.Field))
		}
	}
}

// TestRemovedScanBudget: the search for removed signatures walks each of
// the last 64 revisions' field trees anew; 64 revisions sharing a tree of
// 16384 fields cost 64 full walks. The walks now share one budget and a
// document over it is refused unvalidated.
func TestRemovedScanBudget(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	objs := sharedKidsTree(101, 14, "x")
	objs[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R << /Kids 101 0 R >>] /SigFlags 3 >> >>"
	doc := appendUpdate(p.signPDF(t, signOpts{}), objs, 1)
	for range maxRevisionsScanned {
		doc = appendUpdate(doc, map[int]string{3: "<< /Producer (again) >>"}, 1)
	}
	// The latest revision keeps only the signed field.
	doc = appendUpdate(doc, map[int]string{1: "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>"}, 1)
	r := verifyBytes(t, opts, doc)
	if r.Indication != report.TotalFailed || r.SubIndication != report.FormatFailure || len(r.Signatures) != 0 {
		t.Fatalf("want TOTAL-FAILED/FORMAT_FAILURE with nothing validated, got %s/%s with %d signatures %v",
			r.Indication, r.SubIndication, len(r.Signatures), r.Errors)
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), "too many form fields") {
		t.Fatalf("the report should say why: %q", r.Errors)
	}
}

// TestEarlierRevisionTooManySignatures: an earlier revision with more than
// pdf.MaxSignatures signature fields, removed by the latest, was read only
// up to the bound and the document validated; it is refused as the latest
// revision would be.
func TestEarlierRevisionTooManySignatures(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	doc := withFields(p.signPDF(t, signOpts{}), pdf.MaxSignatures+10)
	doc = appendUpdate(doc, map[int]string{1: "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>"}, 1)
	r := verifyBytes(t, opts, doc)
	if r.Indication != report.TotalFailed || r.SubIndication != report.FormatFailure || len(r.Signatures) != 0 {
		t.Fatalf("want TOTAL-FAILED/FORMAT_FAILURE with nothing validated, got %s/%s with %d signatures %v",
			r.Indication, r.SubIndication, len(r.Signatures), r.Errors)
	}
}
