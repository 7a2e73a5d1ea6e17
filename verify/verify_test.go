package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

func verifyBytes(t *testing.T, opts Options, pdf []byte) *report.Report {
	t.Helper()
	rep, err := New(opts).VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
	if err != nil {
		t.Fatalf("VerifyPDF: %v", err)
	}
	return rep
}

func TestGeneratedSignatures(t *testing.T) {
	p := newTestPKI(t)
	trusted := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	cases := []struct {
		name    string
		o       signOpts
		opts    Options
		ind     report.Indication
		sub     report.SubIndication
		level   string
		mutate  func([]byte) []byte
		checkFn func(*testing.T, *report.Report)
	}{
		{name: "B-B trusted", opts: trusted, ind: report.TotalPassed, level: "B-B", checkFn: func(t *testing.T, r *report.Report) {
			s := r.Signatures[0].Signer
			if s == nil || s.CommonName != "Citizen One" || s.CivilNumber != "12345678" || len(s.QCTypes) != 1 || s.QCTypes[0] != "esign" {
				t.Errorf("signer identity wrong: %+v", s)
			}
			// QC statements alone are no qualification (ETSI TS 119 615): without a trusted list it is unknown.
			if q := s.Qualification; s.Qualified || s.QSCD || q == nil || q.Status != report.QualificationUnknown || q.Reason != "no trusted list" ||
				!q.Certificate.QcCompliance || !q.Certificate.QcSSCD {
				t.Errorf("qualification without a trusted list: %+v %+v", s, q)
			}
			if r.Signatures[0].ClaimedSigningTime == nil || !r.Signatures[0].ClaimedSigningTime.Equal(time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)) {
				t.Errorf("claimed time %v", r.Signatures[0].ClaimedSigningTime)
			}
		}},
		{name: "B-T trusted", o: signOpts{timestamp: true}, opts: trusted, ind: report.TotalPassed, level: "B-T", checkFn: func(t *testing.T, r *report.Report) {
			if r.Signatures[0].ProvenSigningTime == nil {
				t.Error("no proven signing time")
			}
		}},
		{name: "B-T qualified by a trusted list", o: signOpts{timestamp: true}, opts: Options{TrustedLists: testTrustedList(p), Revocation: RevocationIgnored},
			ind: report.TotalPassed, level: "B-T", checkFn: func(t *testing.T, r *report.Report) {
				sig := r.Signatures[0]
				s, q := sig.Signer, sig.Signer.Qualification
				if !s.Qualified || !s.QSCD || q.Status != report.QualificationQualified || q.QualifiedFrom != report.FromCertificate ||
					q.TrustedList == nil || q.TrustedList.Territory != "OM" || q.TrustedList.ServiceType != tsl.SvcTypeCAQC {
					t.Errorf("qualification from the trusted list: %+v %+v", s, q)
				}
				if ts := sig.Timestamps[0]; !ts.Qualified || ts.Qualification.TrustedList.ServiceType != tsl.SvcTypeTSAQTST {
					t.Errorf("timestamp not qualified: %+v %+v", ts, ts.Qualification)
				}
			}},
		{name: "untrusted", opts: Options{Revocation: RevocationIgnored}, ind: report.Indeterminate, sub: report.NoCertificateChainFound, level: "B-B"},
		{name: "revocation required, none available", opts: Options{TrustAnchors: []*x509.Certificate{p.root}}, ind: report.Indeterminate, sub: report.TryLater, level: "B-B"},
		{name: "pkcs7 subfilter", o: signOpts{subFilter: "adbe.pkcs7.detached"}, opts: trusted, ind: report.TotalPassed, level: "PKCS7-B"},
		{name: "ski signer id", o: signOpts{skiSID: true}, opts: trusted, ind: report.TotalPassed, level: "B-B"},
		{name: "no signed attributes", o: signOpts{noAttrs: true, subFilter: "adbe.pkcs7.detached"}, opts: trusted,
			ind: report.Indeterminate, sub: report.NoSigningCertificateFound, checkFn: func(t *testing.T, r *report.Report) {
				if !r.Signatures[0].SignatureIntact {
					t.Error("an intact signature without signed attributes reported as broken")
				}
			}},
		{name: "encapsulated content", o: signOpts{encapsulate: true}, opts: trusted, ind: report.TotalFailed, sub: report.FormatFailure},
		{name: "wrong signing-certificate-v2", o: signOpts{wrongCert: true}, opts: trusted, ind: report.Indeterminate, sub: report.NoSigningCertificateFound},
		{name: "one byte changed", opts: trusted, ind: report.TotalFailed, sub: report.HashFailure, mutate: func(b []byte) []byte {
			i := bytes.Index(b, []byte("Signed document"))
			b[i] = 's'
			return b
		}},
		{name: "page appended", opts: trusted, ind: report.TotalFailed, sub: report.FormatFailure, mutate: appendPage, checkFn: func(t *testing.T, r *report.Report) {
			// Intact but TOTAL-FAILED: no level, as docs/verify-report.md says.
			if s := r.Signatures[0]; !s.SignatureIntact || s.Level != "" {
				t.Errorf("intact %v, level %q: want an intact signature without a level", s.SignatureIntact, s.Level)
			}
		}},
		{name: "expired at validation time", opts: Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored, At: time.Now().Add(48 * time.Hour)},
			ind: report.Indeterminate, sub: report.OutOfBoundsNoPOE},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pdf := p.signPDF(t, c.o)
			if c.mutate != nil {
				pdf = c.mutate(pdf)
			}
			r := verifyBytes(t, c.opts, pdf)
			checkReportDescribed(t, r)
			if len(r.Signatures) != 1 {
				t.Fatalf("%d signatures: %s", len(r.Signatures), summary(r))
			}
			s := r.Signatures[0]
			if s.Indication != c.ind || (c.sub != "" && s.SubIndication != c.sub) {
				t.Fatalf("got %s/%s, want %s/%s: %s", s.Indication, s.SubIndication, c.ind, c.sub, summary(r))
			}
			if c.level != "" && s.Level != c.level {
				t.Errorf("level %q, want %q", s.Level, c.level)
			}
			if r.Indication != s.Indication {
				t.Errorf("overall %s differs from the only signature's %s", r.Indication, s.Indication)
			}
			if c.checkFn != nil {
				c.checkFn(t, r)
			}
		})
	}
}

// appendPage adds an incremental update with a new page.
func appendPage(b []byte) []byte {
	start := len(b)
	var u bytes.Buffer
	off7 := start
	fmt.Fprintf(&u, "7 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>\nendobj\n")
	off2 := start + u.Len()
	fmt.Fprintf(&u, "2 0 obj\n<< /Type /Pages /Kids [3 0 R 7 0 R] /Count 2 >>\nendobj\n")
	xref := start + u.Len()
	prev := bytes.LastIndex(b, []byte("startxref\n"))
	var prevOff int
	fmt.Sscanf(string(b[prev+len("startxref\n"):]), "%d", &prevOff) //nolint:errcheck
	fmt.Fprintf(&u, "xref\n2 1\n%010d 00000 n \n7 1\n%010d 00000 n \ntrailer\n<< /Size 8 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", off2, off7, prevOff, xref)
	return append(b, u.Bytes()...)
}

func TestUnsignedAndBroken(t *testing.T) {
	for _, c := range []struct {
		name string
		pdf  string
	}{
		{"not a pdf", "hello world"},
		{"cyclic prev", "%PDF-1.7\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Prev 9 >>\nstartxref\n9\n%%EOF\n"},
		{"self reference", "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /AcroForm 2 0 R >>\nendobj\n2 0 obj\n2 0 R\nendobj\nxref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000063 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n82\n%%EOF\n"},
		{"deep nesting", "%PDF-1.7\n1 0 obj\n" + strings.Repeat("[", 100000) + "\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"},
		{"huge contents", "%PDF-1.7\n1 0 obj\n<< /Contents <" + strings.Repeat("00", 1<<20) + "> >>\nendobj\n%%EOF\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				r := verifyBytes(t, Options{}, []byte(c.pdf))
				if r.Indication == report.TotalPassed {
					t.Errorf("broken input passed: %s", summary(r))
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("no verdict within 10 s")
			}
		})
	}
}

// TestGeneratedPDFIndependentCheck checks the test signer's output with
// poppler's pdfsig and qpdf, so the verdicts above rest on sound PDFs.
func TestGeneratedPDFIndependentCheck(t *testing.T) {
	p := newTestPKI(t)
	pdfsig := testenv.Tool(t, "pdfsig")
	qpdf := testenv.Tool(t, "qpdf")
	dir := t.TempDir()
	for name, o := range map[string]signOpts{"plain": {}, "timestamp": {timestamp: true}} {
		file := filepath.Join(dir, name+".pdf")
		if err := os.WriteFile(file, p.signPDF(t, o), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(pdfsig, file).CombinedOutput()
		if !strings.Contains(string(out), "Signature is Valid.") {
			t.Errorf("%s: pdfsig does not find a valid signature:\n%s", name, out)
		}
		if out, err := exec.Command(qpdf, "--check", file).CombinedOutput(); err != nil {
			t.Errorf("%s: qpdf --check: %v\n%s", name, err, out)
		}
		broken := appendPage(p.signPDF(t, o))
		bfile := filepath.Join(dir, name+"-page.pdf")
		if err := os.WriteFile(bfile, broken, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(qpdf, "--check", bfile).CombinedOutput(); err != nil {
			t.Errorf("%s: qpdf --check on the appended page: %v\n%s", name, err, out)
		}
	}
}

// appendAnnotation adds an incremental update with a text annotation on
// the page.
func appendAnnotation(b []byte) []byte {
	start := len(b)
	var u bytes.Buffer
	off7 := start
	fmt.Fprintf(&u, "7 0 obj\n<< /Type /Annot /Subtype /Text /Rect [10 10 30 30] /Contents (a note) /P 3 0 R >>\nendobj\n")
	off3 := start + u.Len()
	fmt.Fprintf(&u, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 6 0 R /Annots [4 0 R 7 0 R] >>\nendobj\n")
	xref := start + u.Len()
	prev := bytes.LastIndex(b, []byte("startxref\n"))
	var prevOff int
	fmt.Sscanf(string(b[prev+len("startxref\n"):]), "%d", &prevOff) //nolint:errcheck
	fmt.Fprintf(&u, "xref\n3 1\n%010d 00000 n \n7 1\n%010d 00000 n \ntrailer\n<< /Size 8 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", off3, off7, prevOff, xref)
	return append(b, u.Bytes()...)
}

func TestDocMDP(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	for _, c := range []struct {
		p    int
		want report.Indication
	}{{0, report.TotalPassed}, {1, report.TotalFailed}, {2, report.TotalFailed}, {3, report.TotalPassed}} {
		r := verifyBytes(t, opts, appendAnnotation(p.signPDF(t, signOpts{docMDP: c.p})))
		s := r.Signatures[0]
		if s.Indication != c.want || len(s.Modifications) == 0 {
			t.Errorf("P=%d: got %s, %d modifications, want %s: %s", c.p, s.Indication, len(s.Modifications), c.want, summary(r))
		}
		// Without changes a certified document passes.
		if r := verifyBytes(t, opts, p.signPDF(t, signOpts{docMDP: c.p})); r.Indication != report.TotalPassed {
			t.Errorf("P=%d unchanged: %s", c.p, summary(r))
		}
	}
}

// testTrustedList lists the test root as a granted CA/QC service and the
// test TSA unit as a granted QTST service (as a verified list would).
func testTrustedList(p *testPKI) *tsl.Trust {
	since := p.root.NotBefore.Add(-time.Hour)
	svc := func(ty, name string, c *x509.Certificate) tsl.Service {
		return tsl.Service{Current: tsl.Status{Type: ty, Name: name, Status: tsl.StatusGranted, Since: since,
			Identity: tsl.Identity{Certificates: []*x509.Certificate{c}}}}
	}
	return tsl.NewTrust(tsl.Loaded{Location: "test", List: &tsl.List{Version: 6, SequenceNumber: 1, Territory: "OM",
		Providers: []tsl.Provider{{Name: "Test TSP", Services: []tsl.Service{svc(tsl.SvcTypeCAQC, "Test CA/QC", p.root), svc(tsl.SvcTypeTSAQTST, "Test QTST", p.tsa)}}}}})
}
