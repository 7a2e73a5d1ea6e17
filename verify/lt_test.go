package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

func TestGeneratedLT(t *testing.T) {
	p := newTestPKI(t)
	pdf := addDSS(p.signPDF(t, signOpts{timestamp: true}), [][]byte{p.ocspFor(t, p.leaf), p.ocspFor(t, p.tsa)}, []*x509.Certificate{p.root})
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
	if r.Indication != report.TotalPassed || r.Signatures[0].Level != "B-LT" {
		t.Fatalf("want TOTAL-PASSED at B-LT: %s", summary(r))
	}
	// Without the DSS the same signature is B-T and, revocation being
	// required, INDETERMINATE/TRY_LATER.
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, p.signPDF(t, signOpts{timestamp: true}))
	if r.Indication != report.Indeterminate || r.SubIndication != report.TryLater || r.Signatures[0].Level != "B-T" {
		t.Fatalf("want INDETERMINATE/TRY_LATER at B-T: %s", summary(r))
	}
}

func TestGeneratedLTA(t *testing.T) {
	p := newTestPKI(t)
	lt := addDSS(p.signPDF(t, signOpts{timestamp: true}), [][]byte{p.ocspFor(t, p.leaf), p.ocspFor(t, p.tsa)}, []*x509.Certificate{p.root})
	// addDSS numbers the DSS object after its streams: 10, 11 are the
	// root certificate and the two OCSP responses are 11, 12; the DSS is 13.
	lta := p.appendDocTimestamp(t, lt, "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 20 0 R] /SigFlags 3 >> /DSS 13 0 R >>")
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, lta)
	if r.Indication != report.TotalPassed || len(r.Signatures) != 2 || r.Signatures[0].Level != "B-LTA" {
		t.Fatalf("want TOTAL-PASSED with a B-LTA signature and a document timestamp: %s", summary(r))
	}
	if d := r.Signatures[1]; d.Kind != "document-timestamp" || d.Indication != report.TotalPassed || !d.CoversWholeDocument {
		t.Fatalf("document timestamp: %s", summary(r))
	}
	// A byte changed inside the DSS revision breaks the document timestamp.
	i := bytes.LastIndex(lta, []byte("/Type /DSS"))
	bad := append([]byte{}, lta...)
	bad[i+1] = 'X'
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, bad)
	if r.Indication != report.TotalFailed {
		t.Fatalf("tampered DSS revision: %s", summary(r))
	}
}

// BenchmarkVerifyPDF measures validations of a ~100 KB B-LT PDF with
// embedded revocation data (no network).
func BenchmarkVerifyPDF(b *testing.B) {
	p := newTestPKI(b)
	pdf := addDSS(p.signPDF(b, signOpts{timestamp: true, padding: 100 << 10}), [][]byte{p.ocspFor(b, p.leaf), p.ocspFor(b, p.tsa)}, []*x509.Certificate{p.root})
	v := New(Options{TrustAnchors: []*x509.Certificate{p.root}})
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := v.VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
			if err != nil || r.Indication != report.TotalPassed || r.Signatures[0].Level != "B-LT" {
				b.Fatalf("unexpected: %v %s", err, summary(r))
			}
		}
	})
}
