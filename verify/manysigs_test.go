package verify

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// withFields appends an update whose form lists the signed field and n
// more fields, each pointing at the one signature value (object 5).
func withFields(signed []byte, n int) []byte {
	objs := map[int]string{}
	refs := []string{"4 0 R"}
	for i := range n {
		objs[100+i] = fmt.Sprintf("<< /FT /Sig /T (f%d) /V 5 0 R >>", i)
		refs = append(refs, fmt.Sprintf("%d 0 R", 100+i))
	}
	objs[1] = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + strings.Join(refs, " ") + "] /SigFlags 3 >> >>"
	return appendUpdate(signed, objs, 1)
}

// TestManySignatureFields: every signature value is validated in full, so
// a few megabytes of fields pointing at one signature cost minutes of CPU
// (quadratic in their number) to an anonymous upload. Past
// pdf.MaxSignatures the document is refused unvalidated.
func TestManySignatureFields(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	signed := p.signPDF(t, signOpts{})

	r := verifyBytes(t, opts, withFields(signed, pdf.MaxSignatures))
	if r.Indication != report.TotalFailed || len(r.Signatures) != 0 {
		t.Fatalf("one over the bound: want TOTAL-FAILED with nothing validated, got %s with %d signatures", r.Indication, len(r.Signatures))
	}

	r = verifyBytes(t, opts, withFields(signed, pdf.MaxSignatures-1))
	if len(r.Signatures) != pdf.MaxSignatures {
		t.Fatalf("at the bound: want %d signatures validated, got %d (%v)", pdf.MaxSignatures, len(r.Signatures), r.Errors)
	}

	r = verifyBytes(t, opts, withFields(signed, 4*pdf.MaxSignatures))
	if r.Indication != report.TotalFailed || r.SubIndication != report.FormatFailure || len(r.Signatures) != 0 {
		t.Fatalf("over the bound: want TOTAL-FAILED/FORMAT_FAILURE with nothing validated, got %s/%s with %d signatures",
			r.Indication, r.SubIndication, len(r.Signatures))
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), fmt.Sprint(pdf.MaxSignatures)) {
		t.Fatalf("the report should name the bound: %q", r.Errors)
	}
}
