package verify

// Tests that the report claims only what the evidence supports (ETSI EN
// 319 102-1, EN 319 142-1): the signer's own claims never stand in for a
// proof of existence, and a level is reached only with its evidence.

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// ocspAt returns an OCSP response for cert, signed by the test root, with
// the given validity and status.
func (p *testPKI) ocspAt(t testing.TB, cert *x509.Certificate, status int, thisUpdate, nextUpdate, revokedAt time.Time) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: status, SerialNumber: cert.SerialNumber,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedAt: revokedAt}, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// fixedFetcher answers every OCSP request with one response.
type fixedFetcher struct{ ocsp []byte }

func (f fixedFetcher) FetchOCSP(context.Context, *x509.Certificate, *x509.Certificate) ([]byte, error) {
	return f.ocsp, nil
}

func (f fixedFetcher) FetchCRL(context.Context, *x509.Certificate) ([]byte, error) {
	return nil, errors.New("no CRL")
}

// TestStaleEmbeddedRevocationFetchesOnline: embedded information that is
// not fresh enough does not stop the verifier from asking the responder
// (EN 319 102-1 §5.2.5: fresher information is looked for before
// TRY_LATER).
func TestStaleEmbeddedRevocationFetchesOnline(t *testing.T) {
	p := newTestPKIWith(t, "http://ocsp.invalid/")
	// Expired long before the validation time, and issued before the
	// claimed signing time (2025-01-01).
	stale := p.ocspAt(t, p.leaf, ocsp.Good, time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 2, 0, 0, 0, 0, time.UTC), time.Time{})
	pdf := addDSS(p.signPDF(t, signOpts{}), [][]byte{stale}, []*x509.Certificate{p.root})
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: fixedFetcher{p.ocspFor(t, p.leaf)}}
	if r := verifyBytes(t, opts, pdf); r.Indication != report.TotalPassed {
		t.Fatalf("fresh information online: %s", summary(r))
	}
	opts.AllowOnline = false
	if r := verifyBytes(t, opts, pdf); r.Indication != report.Indeterminate || r.SubIndication != report.TryLater {
		t.Fatalf("offline, only expired information: %s", summary(r))
	}
}

// TestClaimedTimeIsNoProofOfExistence: the signer's /M (or signing-time)
// is only a claim (EN 319 102-1 §5.5: without a proof of existence the
// best-signature-time is the validation time). Revocation information
// that has expired by the validation time says nothing about the status
// now, whatever time the signer claims to have signed at.
func TestClaimedTimeIsNoProofOfExistence(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	// A "good" response that expired ten minutes ago: issued after the
	// claimed signing time (2025-01-01), not valid at the validation time.
	stale := p.ocspAt(t, p.leaf, ocsp.Good, now.Add(-30*time.Minute), now.Add(-10*time.Minute), time.Time{})
	pdf := addDSS(p.signPDF(t, signOpts{}), [][]byte{stale}, []*x509.Certificate{p.root})
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
	if s := r.Signatures[0]; s.Indication != report.Indeterminate || s.SubIndication != report.TryLater {
		t.Fatalf("expired revocation information and no proof of existence: want INDETERMINATE/TRY_LATER: %s", summary(r))
	}
	// The same response is enough when a timestamp proves the signature
	// existed before it was issued.
	tsd := addDSS(p.signPDF(t, signOpts{timestamp: true}), [][]byte{
		p.ocspAt(t, p.leaf, ocsp.Good, now.Add(time.Minute), now.Add(2*time.Minute), time.Time{}),
		p.ocspFor(t, p.tsa)}, []*x509.Certificate{p.root})
	if r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, At: now.Add(30 * time.Minute)}, tsd); r.Indication != report.TotalPassed {
		t.Fatalf("revocation information issued after the proven signing time: %s", summary(r))
	}
}
