package verify

// Tests that the report claims only what the evidence supports (ETSI EN
// 319 102-1, EN 319 142-1): the signer's own claims never stand in for a
// proof of existence, and a level is reached only with its evidence.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
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

// withIntermediate re-issues the test signer under an intermediate CA
// (root → intermediate → leaf) and returns the intermediate and its key.
func (p *testPKI) withIntermediate(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	now := time.Now()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Test Issuing CA", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{7, 7, 7}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, &key.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	leaf := *p.leaf
	leaf.AuthorityKeyId = nil
	der, err = x509.CreateCertificate(rand.Reader, &leaf, ca, &p.leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
	return ca, key
}

// TestLTNeedsRevocationForTheWholeChain: B-LT means the validation data of
// the whole path is in the DSS (EN 319 142-1 §6.3: the certificates and
// revocation values for the signing certificate's path and the TSA's), as
// EU DSS checks (revocation for every certificate below a trust anchor or
// self-signed root, except id-pkix-ocsp-nocheck). An OCSP response for the
// signer alone, with the issuing CA's status missing, is no B-LT.
func TestLTNeedsRevocationForTheWholeChain(t *testing.T) {
	p := newTestPKI(t)
	ca, caKey := p.withIntermediate(t)
	now := time.Now()
	leafOCSP, err := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: p.leaf.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	signed := p.signPDF(t, signOpts{timestamp: true})
	for _, c := range []struct {
		name   string
		ocsps  [][]byte
		policy RevocationPolicy
		level  string
		ind    report.Indication
	}{
		{"issuing CA's status missing", [][]byte{leafOCSP, p.ocspFor(t, p.tsa)}, RevocationRequired, "B-T", report.Indeterminate},
		{"issuing CA's status missing, best effort", [][]byte{leafOCSP, p.ocspFor(t, p.tsa)}, RevocationBestEffort, "B-T", report.TotalPassed},
		{"TSA's status missing", [][]byte{leafOCSP, p.ocspFor(t, ca)}, RevocationBestEffort, "B-T", report.TotalPassed},
		{"whole chain", [][]byte{leafOCSP, p.ocspFor(t, ca), p.ocspFor(t, p.tsa)}, RevocationRequired, "B-LT", report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSS(append([]byte{}, signed...), c.ocsps, []*x509.Certificate{p.root, ca})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: c.policy}, pdf)
			if s := r.Signatures[0]; s.Level != c.level || s.Indication != c.ind {
				t.Fatalf("want %s at %s: %s", c.ind, c.level, summary(r))
			}
		})
	}
}

// TestCRLIssuerOfUnreadableCRL: a CRL that x509 refuses (an explicit v1
// version, as in the Certipost LTA corpus file) still names its issuer for
// the B-LT presence check.
func TestCRLIssuerOfUnreadableCRL(t *testing.T) {
	p := newTestPKI(t)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(),
		NextUpdate: time.Now().Add(time.Hour)}, p.root, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := crlIssuer(der); !bytes.Equal(got, p.root.RawSubject) {
		t.Fatalf("issuer of a v2 CRL: %x", got)
	}
	if crlIssuer([]byte{0x30, 0x03, 0x02, 0x01, 0x00}) != nil || crlIssuer(nil) != nil {
		t.Fatal("garbage has no issuer")
	}
}

// TestLTNotFromFetchedRevocation: what the verifier fetched online is not
// in the document, so it cannot make the document B-LT (EN 319 142-1
// §6.3): the level says what the file carries, for adbe.pkcs7.detached as
// for PAdES.
func TestLTNotFromFetchedRevocation(t *testing.T) {
	p := newTestPKIWith(t, "http://ocsp.invalid/")
	// The DSS carries the TSA's status only; the signer's comes from the responder.
	pdf := addDSS(p.signPDF(t, signOpts{subFilter: "adbe.pkcs7.detached", timestamp: true}), [][]byte{p.ocspFor(t, p.tsa)}, []*x509.Certificate{p.root})
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: fixedFetcher{p.ocspFor(t, p.leaf)}}
	r := verifyBytes(t, opts, pdf)
	if s := r.Signatures[0]; s.Indication != report.TotalPassed || s.Level != "PKCS7-T" {
		t.Fatalf("want TOTAL-PASSED at PKCS7-T: %s", summary(r))
	}
	// With the signer's status in the DSS as well it is PKCS7-LT.
	pdf = addDSS(p.signPDF(t, signOpts{subFilter: "adbe.pkcs7.detached", timestamp: true}), [][]byte{p.ocspFor(t, p.tsa), p.ocspFor(t, p.leaf)}, []*x509.Certificate{p.root})
	if r := verifyBytes(t, opts, pdf); r.Signatures[0].Level != "PKCS7-LT" {
		t.Fatalf("want PKCS7-LT: %s", summary(r))
	}
}

// TestRevokedAfterProvenSigningTime: a certificate revoked after the
// best-signature-time (a valid signature timestamp) does not invalidate the
// signature (EN 319 102-1 §5.5.4: REVOKED_NO_POE only when the revocation is
// not after the best-signature-time); revoked before it, the verdict stays
// INDETERMINATE/REVOKED_NO_POE.
func TestRevokedAfterProvenSigningTime(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	at := now.Add(30 * time.Minute)
	signed := p.signPDF(t, signOpts{timestamp: true}) // proven at about now
	for _, c := range []struct {
		name      string
		revokedAt time.Time
		ind       report.Indication
		sub       report.SubIndication
	}{
		{"revoked after the timestamp", now.Add(10 * time.Minute), report.TotalPassed, ""},
		{"revoked before the timestamp", now.Add(-10 * time.Minute), report.Indeterminate, report.RevokedNoPOE},
	} {
		t.Run(c.name, func(t *testing.T) {
			revoked := p.ocspAt(t, p.leaf, ocsp.Revoked, now.Add(11*time.Minute), now.Add(2*time.Hour), c.revokedAt)
			pdf := addDSS(append([]byte{}, signed...), [][]byte{revoked, p.ocspFor(t, p.tsa)}, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, At: at}, pdf)
			if s := r.Signatures[0]; s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
		})
	}
}

// TestQualificationReasonWithTrustedLists: with a trusted list configured,
// a signature that fails before its path is validated must not be
// reported as having "no trusted list" (TS 119 615 was simply not applied).
func TestQualificationReasonWithTrustedLists(t *testing.T) {
	p := newTestPKI(t)
	pdf := p.signPDF(t, signOpts{timestamp: true})
	i := bytes.Index(pdf, []byte("Signed document"))
	pdf[i] = 's'
	r := verifyBytes(t, Options{TrustedLists: testTrustedList(p), Revocation: RevocationIgnored}, pdf)
	s := r.Signatures[0]
	if s.Indication != report.TotalFailed || s.Signer == nil || s.Signer.Qualified || s.Signer.Qualification == nil ||
		s.Signer.Qualification.Status != report.QualificationUnknown || s.Signer.Qualification.Reason == noTrustedList {
		t.Fatalf("changed document with a trusted list: %s %+v", summary(r), s.Signer.Qualification)
	}
}
