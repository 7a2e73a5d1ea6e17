package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/verify/cms"
	"github.com/thiqa/thiqa/verify/report"
)

// flipSignatureValue changes the last byte of the CMS signature value of a
// test-signed PDF: the digest still matches, the signature does not.
func flipSignatureValue(t *testing.T, pdf []byte) []byte {
	t.Helper()
	i := bytes.Index(pdf, []byte("/Contents <")) + len("/Contents <")
	j := i + bytes.IndexByte(pdf[i:], '>')
	padded, err := hex.DecodeString(string(pdf[i:j]))
	if err != nil {
		t.Fatal(err)
	}
	// The CMS is followed by zero padding; its own DER length says where it
	// ends (trimming the zeros also cut a CMS whose last byte ends in a
	// zero digit, now and then: a random signature value or time-stamp).
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(padded, &outer); err != nil {
		t.Fatal(err)
	}
	sd, err := cms.Parse(outer.FullBytes)
	if err != nil {
		t.Fatal(err)
	}
	sig := hex.EncodeToString(sd.Signers[0].Signature)
	k := bytes.Index(pdf, []byte(sig))
	if k < 0 {
		t.Fatal("signature value not found in /Contents")
	}
	out := bytes.Clone(pdf)
	last := k + len(sig) - 1
	if out[last] == '0' {
		out[last] = '1'
	} else {
		out[last] = '0'
	}
	return out
}

// TestNoTrustAnchor validates without any anchor: broken documents still
// fail, intact ones are INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND, and
// every report warns that no anchor was configured.
func TestNoTrustAnchor(t *testing.T) {
	p := newTestPKI(t)
	signed := p.signPDF(t, signOpts{timestamp: true})
	changed := bytes.Clone(signed)
	changed[bytes.Index(changed, []byte("Signed document"))] = 's'
	for _, c := range []struct {
		name string
		pdf  []byte
		ind  report.Indication
		sub  report.SubIndication
	}{
		{"intact", signed, report.Indeterminate, report.NoCertificateChainFound},
		{"one byte changed", changed, report.TotalFailed, report.HashFailure},
		{"signature value changed", flipSignatureValue(t, signed), report.TotalFailed, report.SigCryptoFailure},
		{"page appended", appendPage(bytes.Clone(signed)), report.TotalFailed, report.FormatFailure},
		{"not a PDF", []byte("<html>hello</html>"), report.TotalFailed, report.FormatFailure},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := verifyBytes(t, Options{}, c.pdf)
			if r.Indication != c.ind || r.SubIndication != c.sub {
				t.Fatalf("got %s/%s, want %s/%s: %s", r.Indication, r.SubIndication, c.ind, c.sub, summary(r))
			}
			if !slices.Contains(r.Warnings, NoAnchorWarning) {
				t.Fatalf("no warning that no anchor was configured: %q", r.Warnings)
			}
			if c.ind == report.Indeterminate && (len(r.Signatures) != 1 || !r.Signatures[0].SignatureIntact || r.Signatures[0].Level != "B-T") {
				t.Fatalf("an intact signature without anchors: %s", summary(r))
			}
		})
	}
	if r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}, signed); slices.Contains(r.Warnings, NoAnchorWarning) {
		t.Fatalf("anchor configured, still warned: %q", r.Warnings)
	}
}
