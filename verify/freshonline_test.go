package verify

// Tests of online revocation for a certificate issued moments before it
// is verified (TestVerifyEndToEnd's B-B seal): the responder's answer is
// produced after the validation time, or does not tell the status, and
// the verifier must still come to a verdict when the CA's information
// tells it (EN 319 102-1 §5.2.5, §5.2.6: TRY_LATER only when no source
// available tells the status).

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// sourceFetcher answers OCSP requests with ocspFn's response and CRL
// requests with crl (an error when nil), and counts the requests.
type sourceFetcher struct {
	ocspFn     func() []byte
	crl        []byte
	ocspN, crN atomic.Int32
}

func (f *sourceFetcher) FetchOCSP(context.Context, *x509.Certificate, *x509.Certificate) ([]byte, error) {
	f.ocspN.Add(1)
	return f.ocspFn(), nil
}

func (f *sourceFetcher) FetchCRL(context.Context, *x509.Certificate) ([]byte, error) {
	f.crN.Add(1)
	if f.crl == nil {
		return nil, errors.New("no CRL")
	}
	return f.crl, nil
}

// withCRLDP re-issues the test signer with a CRL distribution point (and
// its OCSP responder).
func (p *testPKI) withCRLDP(t testing.TB) {
	t.Helper()
	tmpl := *p.leaf
	tmpl.OCSPServer = []string{"http://ocsp.invalid/"}
	tmpl.CRLDistributionPoints = []string{"http://crl.invalid/root.crl"}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
}

// crlOf returns a CRL of the test root revoking revoked (none when nil).
func (p *testPKI) crlOf(t testing.TB, thisUpdate, nextUpdate time.Time, revoked *big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	if revoked != nil {
		entries = []x509.RevocationListEntry{{SerialNumber: revoked, RevocationTime: thisUpdate.Add(-time.Hour)}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate, RevokedCertificateEntries: entries}, p.root, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestOnlineOCSPProducedAfterValidationTime: a B-B signature (no proof of
// existence, validated "now") whose OCSP response the responder signs on
// demand while the validation runs: thisUpdate (whole seconds) is later
// than the validation time taken when the validation began as soon as a
// second boundary falls between the two, which load makes likely. A
// "good" produced after the validation time tells the status at it (a
// revocation is final, and a revoked answer carries its time).
func TestOnlineOCSPProducedAfterValidationTime(t *testing.T) {
	p := newTestPKIWith(t, "http://ocsp.invalid/")
	f := &sourceFetcher{ocspFn: func() []byte {
		now := time.Now()
		// Signed in the next second, as a responder whose clock is
		// a little ahead, or that answered after a second boundary.
		return p.ocspAt(t, p.leaf, ocsp.Good, now.Add(time.Second).Truncate(time.Second), now.Add(time.Hour), time.Time{})
	}}
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: f}
	if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Indication != report.TotalPassed {
		t.Fatalf("a good answer produced just after the validation time began: %s", summary(r))
	}
	// A revoked answer produced after the validation time, revoking before it.
	f.ocspFn = func() []byte {
		now := time.Now()
		return p.ocspAt(t, p.leaf, ocsp.Revoked, now.Add(time.Second).Truncate(time.Second), now.Add(time.Hour), now.Add(-time.Minute))
	}
	if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Signatures[0].SubIndication != report.RevokedNoPOE {
		t.Fatalf("revoked, answered just after the validation time began: %s", summary(r))
	}
}

// TestOCSPWithoutStatusFallsBackToCRL: an online OCSP answer that does
// not tell the status (unknown, RFC 6960 §2.2: the client may try another
// source; or expired) is no reason for TRY_LATER while the CA's CRL tells
// it.
func TestOCSPWithoutStatusFallsBackToCRL(t *testing.T) {
	p := newTestPKI(t)
	p.withCRLDP(t)
	now := time.Now()
	for _, c := range []struct {
		name string
		ocsp []byte
	}{
		{"unknown", p.ocspAt(t, p.leaf, ocsp.Unknown, now.Add(-time.Minute), now.Add(time.Hour), time.Time{})},
		{"expired", p.ocspAt(t, p.leaf, ocsp.Good, now.Add(-2*time.Hour), now.Add(-time.Hour), time.Time{})},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &sourceFetcher{ocspFn: func() []byte { return c.ocsp }, crl: p.crlOf(t, now.Add(-time.Minute), now.Add(time.Hour), nil)}
			opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: f}
			if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Indication != report.TotalPassed || f.crN.Load() != 1 {
				t.Fatalf("CRL without the signer (%d CRL fetches): %s", f.crN.Load(), summary(r))
			}
			f = &sourceFetcher{ocspFn: func() []byte { return c.ocsp }, crl: p.crlOf(t, now.Add(-time.Minute), now.Add(time.Hour), p.leaf.SerialNumber)}
			opts.Fetcher = f
			if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Signatures[0].SubIndication != report.RevokedNoPOE {
				t.Fatalf("CRL revoking the signer: %s", summary(r))
			}
			// No CRL either: TRY_LATER, the CRL asked once.
			f = &sourceFetcher{ocspFn: func() []byte { return c.ocsp }}
			opts.Fetcher = f
			if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Signatures[0].SubIndication != report.TryLater || f.crN.Load() != 1 {
				t.Fatalf("nothing tells the status (%d CRL fetches): %s", f.crN.Load(), summary(r))
			}
		})
	}
}

// TestFetcherDoesNotKeepUnknown: an "unknown" answer is not kept by the
// fetcher until its nextUpdate (a responder that did not know a serial
// may know it a moment later: the responder itself never caches it); a
// definitive one is.
func TestFetcherDoesNotKeepUnknown(t *testing.T) {
	p := newTestPKIWith(t, "http://ocsp.invalid/")
	var status atomic.Int32
	status.Store(int32(ocsp.Unknown))
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		now := time.Now()
		w.Write(p.ocspAt(t, p.leaf, int(status.Load()), now.Add(-time.Minute), now.Add(time.Hour), time.Time{})) //nolint:errcheck
	}))
	defer srv.Close()
	tmpl := *p.leaf
	tmpl.OCSPServer = []string{srv.URL}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	f := &HTTPFetcher{}
	get := func() int {
		t.Helper()
		der, err := f.FetchOCSP(context.Background(), leaf, p.root)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ocsp.ParseResponseForCert(der, leaf, p.root)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	if st := get(); st != ocsp.Unknown {
		t.Fatalf("first answer: status %d", st)
	}
	status.Store(int32(ocsp.Good))
	if st := get(); st != ocsp.Good || hits.Load() != 2 {
		t.Fatalf("after an unknown answer: status %d, %d requests (the unknown answer was kept)", st, hits.Load())
	}
	if st := get(); st != ocsp.Good || hits.Load() != 2 {
		t.Fatalf("a good answer is kept: status %d, %d requests", st, hits.Load())
	}
}

// TestOnlineCRLPublishedAfterValidationTime: the same for a CRL the
// publisher signs while the validation runs (at start-up, or triggered by
// a revocation): published after the validation time, it tells the status
// at it.
func TestOnlineCRLPublishedAfterValidationTime(t *testing.T) {
	p := newTestPKI(t)
	p.withCRLDP(t)
	tmpl := *p.leaf
	tmpl.OCSPServer = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
	next := time.Now().Add(time.Second).Truncate(time.Second)
	f := &sourceFetcher{crl: p.crlOf(t, next, next.Add(time.Hour), nil)}
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: f}
	if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Indication != report.TotalPassed {
		t.Fatalf("a CRL published just after the validation time began: %s", summary(r))
	}
}

// TestRevocationIssuedAfterExpiry: information issued after the signer's
// certificate expired does not tell that it was not revoked (a CA drops
// an expired certificate from its CRLs, a responder may answer "good" for
// it) unless the CRL keeps expired certificates (ExpiredCertsOnCRL) or the
// responder keeps their status (archiveCutoff) since no later than the
// expiry. Validated at a past time (`thiqa verify --at`) when the
// certificate was valid, with a CRL or an OCSP answer fetched now, after
// it expired: INDETERMINATE, never PASSED; a revocation it shows counts.
func TestRevocationIssuedAfterExpiry(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	tmpl := *p.leaf
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-50*time.Minute), now.Add(-10*time.Minute)
	tmpl.OCSPServer = []string{"http://ocsp.invalid/"}
	tmpl.CRLDistributionPoints = []string{"http://crl.invalid/root.crl"}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
	at := now.Add(-30 * time.Minute)
	crl := func(keeps time.Time, revoked *big.Int) []byte {
		var exts []pkix.Extension
		if !keeps.IsZero() {
			v, err := asn1.MarshalWithParams(keeps.UTC(), "generalized")
			if err != nil {
				t.Fatal(err)
			}
			exts = []pkix.Extension{{Id: oidExpiredCertsOnCRL, Value: v}}
		}
		var entries []x509.RevocationListEntry
		if revoked != nil {
			entries = []x509.RevocationListEntry{{SerialNumber: revoked, RevocationTime: now.Add(-40 * time.Minute)}}
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Minute),
			NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries, ExtraExtensions: exts}, p.root, p.rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := func(cutoff time.Time) []byte {
		r := ocsp.Response{Status: ocsp.Good, SerialNumber: p.leaf.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
		if !cutoff.IsZero() {
			v, err := asn1.MarshalWithParams(cutoff.UTC(), "generalized")
			if err != nil {
				t.Fatal(err)
			}
			r.ExtraExtensions = []pkix.Extension{{Id: oidOCSPArchiveCutoff, Value: v}}
		}
		der, err := ocsp.CreateResponse(p.root, p.root, r, p.rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	noOCSP := func() []byte { return nil }
	doc := p.signPDF(t, signOpts{})
	for _, c := range []struct {
		name string
		f    *sourceFetcher
		want report.SubIndication // "" for TOTAL-PASSED
	}{
		{"CRL without the expired signer", &sourceFetcher{ocspFn: noOCSP, crl: crl(time.Time{}, nil)}, report.TryLater},
		{"CRL keeping expired certificates since later", &sourceFetcher{ocspFn: noOCSP, crl: crl(now.Add(-5*time.Minute), nil)}, report.TryLater},
		{"CRL keeping expired certificates since earlier", &sourceFetcher{ocspFn: noOCSP, crl: crl(now.Add(-time.Hour), nil)}, ""},
		{"CRL revoking the expired signer", &sourceFetcher{ocspFn: noOCSP, crl: crl(time.Time{}, p.leaf.SerialNumber)}, report.RevokedNoPOE},
		{"OCSP good without archive cutoff", &sourceFetcher{ocspFn: func() []byte { return good(time.Time{}) }}, report.TryLater},
		{"OCSP good with an archive cutoff before the expiry", &sourceFetcher{ocspFn: func() []byte { return good(now.Add(-time.Hour)) }}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{TrustAnchors: []*x509.Certificate{p.root}, At: at, AllowOnline: true, Fetcher: c.f}
			r := verifyBytes(t, opts, doc)
			if c.want == "" {
				if r.Indication != report.TotalPassed {
					t.Fatalf("want TOTAL-PASSED: %s", summary(r))
				}
				return
			}
			if r.Indication == report.TotalPassed || r.Signatures[0].SubIndication != c.want {
				t.Fatalf("want %s: %s", c.want, summary(r))
			}
		})
	}
}

// TestUnknownAskedOncePerDocument: an "unknown" answer, which the fetcher
// does not keep across documents, is still not asked for again within one
// document (its validation at the proof of existence, its other
// signatures): one request to the responder, not one per look.
func TestUnknownAskedOncePerDocument(t *testing.T) {
	var hits atomic.Int32
	var p *testPKI
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		now := time.Now()
		w.Write(p.ocspAt(t, p.leaf, ocsp.Unknown, now.Add(-time.Minute), now.Add(time.Hour), time.Time{})) //nolint:errcheck
	}))
	defer srv.Close()
	p = newTestPKIWith(t, srv.URL)
	// A TSA whose status needs no check: the timestamp passes, so the
	// signature is validated again at its time.
	tmpl := *p.tsa
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidOCSPNoCheck, Value: []byte{5, 0}})
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.tsaKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.tsa, _ = x509.ParseCertificate(der)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: &HTTPFetcher{}}
	r := verifyBytes(t, opts, p.signPDF(t, signOpts{timestamp: true}))
	if r.Signatures[0].SubIndication != report.TryLater {
		t.Fatalf("the responder knows nothing and there is no CRL: %s", summary(r))
	}
	if r.Signatures[0].ProvenSigningTime == nil {
		t.Fatalf("the timestamp does not prove the signing time: %s", summary(r))
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d OCSP requests for one document, want 1", n)
	}
}
