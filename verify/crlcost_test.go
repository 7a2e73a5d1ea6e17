package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/path"
	"github.com/thiqa/thiqa/verify/report"
)

// bigCRL returns a complete CRL by the test root issued at thisUpdate with
// n entries for other certificates (serials from 1000).
func bigCRL(t testing.TB, p *testPKI, n int, thisUpdate time.Time, extra ...x509.RevocationListEntry) []byte {
	t.Helper()
	entries := make([]x509.RevocationListEntry, 0, n+len(extra))
	for k := range n {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(int64(1000 + k)), RevocationTime: thisUpdate.Add(-time.Hour), ReasonCode: 1})
	}
	return holdCRL(t, p.root, p.rootKey, 7, nil, thisUpdate, append(entries, extra...)...)
}

// BenchmarkOCSPWithBigCRL measures a B-LT PDF whose DSS holds a "good"
// OCSP answer for the signer and a 20,000-entry CRL of its CA issued
// before the answer.
func BenchmarkOCSPWithBigCRL(b *testing.B) {
	p := newTestPKI(b)
	now := time.Now()
	pdf := addDSSWithCRLs(p.signPDF(b, signOpts{timestamp: true}), [][]byte{p.ocspFor(b, p.leaf), p.ocspFor(b, p.tsa)},
		[][]byte{bigCRL(b, p, 20000, now.Add(-5*time.Minute))}, []*x509.Certificate{p.root})
	v := New(Options{TrustAnchors: []*x509.Certificate{p.root}})
	b.ReportAllocs()
	for b.Loop() {
		r, err := v.VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
		if err != nil || r.Indication != report.TotalPassed || r.Signatures[0].Level != "B-LT" {
			b.Fatalf("unexpected: %v %s", err, summary(r))
		}
	}
}

// BenchmarkCheckOCSPWithBigCRL measures the revocation check alone of a
// signer with a "good" OCSP answer and a 20,000-entry CRL of its CA
// (parsed once, as a document's validation does).
func BenchmarkCheckOCSPWithBigCRL(b *testing.B) {
	p := newTestPKI(b)
	now := time.Now()
	crl, err := x509.ParseRevocationList(bigCRL(b, p, 20000, now.Add(-5*time.Minute)))
	if err != nil {
		b.Fatal(err)
	}
	ocsps := [][]byte{p.ocspFor(b, p.leaf)}
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	memo := &ocspMemo{}
	for _, c := range []struct {
		name string
		crls []*x509.RevocationList
	}{{"ocsp-only", nil}, {"ocsp-and-crl", []*x509.RevocationList{crl}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rd := &revocationData{ocsps: ocsps, crls: c.crls, memo: memo}
				if err := rd.CheckRevocation(chain, 1, now, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSkippedCRLsHideNothing: a CRL older than a "good" OCSP answer is not
// read (its signature is not checked) only when neither it nor a delta
// CRL lists the signer's serial: a revocation or hold it dates is still
// found.
func TestSkippedCRLsHideNothing(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	plain := p.signPDF(t, signOpts{})
	good := p.ocspGoodAt(t, p.leaf, now.Add(-time.Minute))
	revoked := x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-20 * time.Minute), ReasonCode: 1}
	for _, c := range []struct {
		name string
		crls [][]byte
		ind  report.Indication
		sub  report.SubIndication
	}{
		{name: "an older CRL listing the revocation", crls: [][]byte{bigCRL(t, p, 100, now.Add(-5*time.Minute), revoked)},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "an older CRL without the signer, and its delta listing the revocation",
			crls: [][]byte{bigCRL(t, p, 100, now.Add(-5*time.Minute)), holdCRL(t, p.root, p.rootKey, 8, big.NewInt(7), now.Add(-3*time.Minute), revoked)},
			ind:  report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "an older CRL without the signer", crls: [][]byte{bigCRL(t, p, 100, now.Add(-5*time.Minute))},
			ind: report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, plain...), [][]byte{good}, c.crls, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
			if s := r.Signatures[0]; s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
		})
	}
}
