package verify

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/api/apitest"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify/report"
)

// Every report of the shared corpus (PAdES and PKCS#7 signatures, document
// timestamps; TOTAL-PASSED, TOTAL-FAILED and INDETERMINATE, trusted and
// not) matches the VerifyReport schema of the OpenAPI document, and every
// member it carries is described there: what an integrator reads is what
// POST /api/v1/verify sends whatever the verdict.
func TestCorpusReportsMatchTheDocument(t *testing.T) {
	root := testenv.SharedCorpus(t)
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range corpusCases() {
		opts := Options{At: c.at, Revocation: c.policy}
		if c.anchor != "" {
			raw, err := os.ReadFile(filepath.Join(root, c.anchor))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pem.Decode(raw)
			if b == nil {
				t.Fatalf("%s: no PEM", c.anchor)
			}
			ac, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			opts.TrustAnchors = []*x509.Certificate{ac}
		}
		fh, err := os.Open(filepath.Join(root, c.file))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		rep, err := New(opts).VerifyPDF(context.Background(), fh, st.Size())
		fh.Close()
		if err != nil {
			continue
		}
		body, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.CheckDescribed("POST", "/api/v1/verify", 200, "application/json", body); err != nil {
			t.Errorf("%s: %v\n%s", c.file, err, body)
		}
		seen[string(rep.Indication)] = true
		for _, s := range rep.Signatures {
			seen[s.Kind] = true
		}
	}
	for _, k := range []string{"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE", "signature", "document-timestamp"} {
		if !seen[k] {
			t.Errorf("no report of the corpus has %s", k)
		}
	}
}

// checkReportDescribed requires r, as POST /api/v1/verify sends it, to
// match the OpenAPI document with every member described.
func checkReportDescribed(t *testing.T, r any) {
	t.Helper()
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.CheckDescribed("POST", "/api/v1/verify", 200, "application/json", body); err != nil {
		t.Errorf("the report does not match the OpenAPI document: %v\n%s", err, body)
	}
}

// The OpenAPI document lists every sub-indication the verifier can send,
// and no other, so that a client generated from it knows each.
func TestSubIndicationsInTheDocument(t *testing.T) {
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := doc.Resolve("#/components/schemas/VerifySubIndication")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, v := range s.(map[string]any)["enum"].([]any) {
		listed = append(listed, v.(string))
	}
	all := []report.SubIndication{report.FormatFailure, report.HashFailure, report.SigCryptoFailure, report.Revoked,
		report.RevokedNoPOE, report.NoCertificateChainFound, report.ChainConstraintsFailure, report.CertificateChainGeneral,
		report.OutOfBoundsNoPOE, report.OutOfBoundsNotRevoked, report.NotYetValid, report.CryptoConstraintsFailure,
		report.TryLater, report.RevocationOutOfBoundsNoPO, report.NoSigningCertificateFound, report.SignedDataNotFound,
		report.NoSignatureFound, report.TimestampOrderFailure}
	var want []string
	for _, a := range all {
		want = append(want, string(a))
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("the document lists %v, the verifier has %v", listed, want)
	}
}
