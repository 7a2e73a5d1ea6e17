package verify

// Tests of suspended (on hold) certificates and of the invalidityDate of
// a revocation: a suspension is INDETERMINATE/TRY_LATER (EN 319 102-1
// §5.2.6: it may be lifted), never REVOKED; an invalidityDate before the
// signing time is reported as a warning without changing the verdict
// (judged by the revocation time).

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// holdCRL returns a CRL signed by issuer (key) with entries; baseNumber,
// when not nil, makes it a delta CRL on that base CRL number.
func holdCRL(t testing.TB, issuer *x509.Certificate, key crypto.Signer, number int64, baseNumber *big.Int, thisUpdate time.Time, entries ...x509.RevocationListEntry) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(2 * time.Hour),
		RevokedCertificateEntries: entries}
	if baseNumber != nil {
		v, _ := asn1.Marshal(baseNumber)
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: v}} // deltaCRLIndicator
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// invalidityDateExt is an invalidityDate extension (RFC 5280 §5.3.2).
func invalidityDateExt(t testing.TB, at time.Time) pkix.Extension {
	t.Helper()
	v, err := asn1.MarshalWithParams(at.UTC(), "generalized")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 24}, Value: v}
}

// ocspRevoked returns a "revoked" OCSP response on cert by the test root
// with the given reason and single extensions.
func (p *testPKI) ocspRevoked(t testing.TB, cert *x509.Certificate, thisUpdate, revokedAt time.Time, reason int, exts ...pkix.Extension) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: ocsp.Revoked, SerialNumber: cert.SerialNumber,
		ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(2 * time.Hour), RevokedAt: revokedAt, RevocationReason: reason,
		ExtraExtensions: exts}, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func hasText(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestSuspendedSigner: the signer's certificate on hold (CRL reasonCode
// or OCSP revocationReason certificateHold) at the validation time gives
// INDETERMINATE/TRY_LATER naming the suspension and its date; a hold
// after the validation time, or after the proven signing time, or lifted
// by a delta CRL's removeFromCRL, changes nothing; a revocation
// (keyCompromise) is still REVOKED.
func TestSuspendedSigner(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	held := now.Add(-10 * time.Minute)
	holdEntry := x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: held, ReasonCode: 6}
	plain := p.signPDF(t, signOpts{})
	stamped := p.signPDF(t, signOpts{timestamp: true}) // proven at about now
	later := now.Add(30 * time.Minute)
	for _, c := range []struct {
		name        string
		signed      []byte
		ocsps, crls [][]byte
		at          time.Time
		ind         report.Indication
		sub         report.SubIndication
		err, warn   string
	}{
		{name: "on hold, CRL", signed: plain, crls: [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), holdEntry)},
			ind: report.Indeterminate, sub: report.TryLater, err: "on hold (suspended) since " + held.UTC().Format(time.RFC3339)},
		{name: "on hold, OCSP", signed: plain, ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(-5*time.Minute), held, ocsp.CertificateHold)},
			ind: report.Indeterminate, sub: report.TryLater, err: "on hold (suspended) since " + held.UTC().Format(time.RFC3339)},
		{name: "on hold, then a good OCSP answer issued later", signed: plain,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(-5*time.Minute), held, ocsp.CertificateHold), p.ocspFor(t, p.leaf)},
			ind:   report.TotalPassed},
		{name: "hold lifted by a delta CRL", signed: plain, crls: [][]byte{
			holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), holdEntry),
			holdCRL(t, p.root, p.rootKey, 2, big.NewInt(1), now.Add(-2*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-3 * time.Minute), ReasonCode: 8})},
			ind: report.TotalPassed},
		{name: "hold after the validation time", signed: plain, at: now,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(time.Minute), now.Add(30*time.Second), ocsp.CertificateHold)},
			ind:   report.TotalPassed, warn: "put on hold (suspended) at " + now.Add(30*time.Second).UTC().Format(time.RFC3339)},
		{name: "hold after the proven signing time", signed: stamped, at: later,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(11*time.Minute), now.Add(10*time.Minute), ocsp.CertificateHold), p.ocspFor(t, p.tsa)},
			ind:   report.TotalPassed, warn: "put on hold (suspended) at " + now.Add(10*time.Minute).UTC().Format(time.RFC3339)},
		{name: "on hold before the proven signing time", signed: stamped, at: later,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(11*time.Minute), held, ocsp.CertificateHold), p.ocspFor(t, p.tsa)},
			ind:   report.Indeterminate, sub: report.TryLater, err: "on hold (suspended)"},
		{name: "on hold before the proven signing time, another answer dates a hold after it", signed: stamped, at: later,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(11*time.Minute), held, ocsp.CertificateHold),
				p.ocspRevoked(t, p.leaf, now.Add(12*time.Minute), now.Add(10*time.Minute), ocsp.CertificateHold), p.ocspFor(t, p.tsa)},
			ind: report.Indeterminate, sub: report.TryLater, err: "on hold (suspended) since " + held.UTC().Format(time.RFC3339)},
		{name: "revoked (keyCompromise), CRL", signed: plain, crls: [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute),
			x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: held, ReasonCode: 1})},
			ind: report.Indeterminate, sub: report.RevokedNoPOE, err: "revoked at"},
		{name: "revoked (keyCompromise) before the claimed signing time, OCSP", signed: plain,
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(-5*time.Minute), time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), ocsp.KeyCompromise)},
			ind:   report.TotalFailed, sub: report.Revoked, err: "revoked at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, c.signed...), c.ocsps, c.crls, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, At: c.at}, pdf)
			s := r.Signatures[0]
			if s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
			if c.err != "" && !hasText(s.Errors, c.err) {
				t.Fatalf("want an error naming %q: %s", c.err, summary(r))
			}
			if c.warn != "" && !hasText(s.Warnings, c.warn) {
				t.Fatalf("want a warning naming %q: %s", c.warn, summary(r))
			}
			if c.sub == report.TryLater && hasText(s.Errors, "revoked") {
				t.Fatalf("a suspension reported as a revocation: %s", summary(r))
			}
		})
	}
}

// TestSuspendedCAAndTSA: an issuing CA on hold makes the signature
// INDETERMINATE/TRY_LATER; the TSA's certificate on hold does so for the
// time-stamp, as a revocation would be handled there, but not as one.
func TestSuspendedCAAndTSA(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	held := now.Add(-10 * time.Minute)
	t.Run("issuing CA on hold", func(t *testing.T) {
		p := newTestPKI(t)
		ca, caKey := p.withIntermediate(t)
		leafOCSP, err := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: p.leaf.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, caKey)
		if err != nil {
			t.Fatal(err)
		}
		rootCRL := holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute),
			x509.RevocationListEntry{SerialNumber: ca.SerialNumber, RevocationTime: held, ReasonCode: 6})
		pdf := addDSSWithCRLs(p.signPDF(t, signOpts{}), [][]byte{leafOCSP}, [][]byte{rootCRL}, []*x509.Certificate{p.root, ca})
		r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
		s := r.Signatures[0]
		if s.Indication != report.Indeterminate || s.SubIndication != report.TryLater || !hasText(s.Errors, "certificate 1: on hold (suspended) since") {
			t.Fatalf("want INDETERMINATE/TRY_LATER for the CA on hold: %s", summary(r))
		}
	})
	t.Run("TSA on hold", func(t *testing.T) {
		p := newTestPKI(t)
		signed := p.signPDF(t, signOpts{timestamp: true})
		pdf := addDSS(signed, [][]byte{p.ocspFor(t, p.leaf), p.ocspRevoked(t, p.tsa, now.Add(-5*time.Minute), held, ocsp.CertificateHold)},
			[]*x509.Certificate{p.root})
		r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
		if len(r.Signatures) != 1 || len(r.Signatures[0].Timestamps) != 1 {
			t.Fatalf("want one signature with one time-stamp: %s", summary(r))
		}
		ts := r.Signatures[0].Timestamps[0]
		if ts.Indication != report.Indeterminate || ts.SubIndication != report.TryLater || !hasText(ts.Errors, "on hold (suspended) since") {
			t.Fatalf("want the time-stamp INDETERMINATE/TRY_LATER, its TSA on hold: %s", summary(r))
		}
	})
}

// TestInvalidityDateWarning: a revoked certificate whose revocation
// information dates the key's invalidity (invalidityDate) before the
// signing time, while the revocation itself is after it, keeps its
// verdict (EN 319 102-1 uses the revocation time) and the report says
// what the CA states.
func TestInvalidityDateWarning(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	plain := p.signPDF(t, signOpts{})
	stamped := p.signPDF(t, signOpts{timestamp: true}) // proven at about now
	beforeClaim := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	revokedLater := now.Add(10 * time.Minute)
	keyCompromise := func(revoked, invalid time.Time) x509.RevocationListEntry {
		return x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: revoked, ReasonCode: 1,
			ExtraExtensions: []pkix.Extension{invalidityDateExt(t, invalid)}}
	}
	for _, c := range []struct {
		name        string
		signed      []byte
		ocsps, crls [][]byte
		at          time.Time
		ind         report.Indication
		sub         report.SubIndication
		warn        string // "" for no invalidity warning
		before      string // how the warning names the time the invalidityDate is before
	}{
		{name: "no proof of existence, invalid before the claimed signing time", signed: plain,
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), keyCompromise(now.Add(-10*time.Minute), beforeClaim))},
			ind:  report.Indeterminate, sub: report.RevokedNoPOE, warn: "was invalid since " + beforeClaim.Format(time.RFC3339), before: "before the claimed signing time "},
		{name: "revoked after the proven signing time, invalid before it (CRL)", signed: stamped, at: now.Add(30 * time.Minute),
			crls:  [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(11*time.Minute), keyCompromise(revokedLater, now.Add(-time.Hour)))},
			ocsps: [][]byte{p.ocspFor(t, p.tsa)},
			ind:   report.TotalPassed, warn: "was invalid since " + now.Add(-time.Hour).UTC().Format(time.RFC3339), before: ", the time it was validated at; it revoked"},
		{name: "revoked after the proven signing time, invalid before it (OCSP)", signed: stamped, at: now.Add(30 * time.Minute),
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(11*time.Minute), revokedLater, ocsp.KeyCompromise, invalidityDateExt(t, now.Add(-time.Hour))), p.ocspFor(t, p.tsa)},
			ind:   report.TotalPassed, warn: "was invalid since " + now.Add(-time.Hour).UTC().Format(time.RFC3339), before: ", the time it was validated at; it revoked"},
		{name: "invalid only after the proven signing time", signed: stamped, at: now.Add(30 * time.Minute),
			crls:  [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(11*time.Minute), keyCompromise(revokedLater, now.Add(5*time.Minute)))},
			ocsps: [][]byte{p.ocspFor(t, p.tsa)},
			ind:   report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, c.signed...), c.ocsps, c.crls, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, At: c.at}, pdf)
			s := r.Signatures[0]
			if s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
			if c.warn == "" {
				if hasText(s.Warnings, "was invalid since") {
					t.Fatalf("an invalidity warning for an invalidityDate after the signing time: %s", summary(r))
				}
				return
			}
			if !hasText(s.Warnings, "the CA states that the key of \""+p.leaf.Subject.String()+"\" "+c.warn) {
				t.Fatalf("want a warning that the CA states the key %s: %s", c.warn, summary(r))
			}
			if !hasText(s.Warnings, c.before) {
				t.Fatalf("want the warning to name the time as %q: %s", c.before, summary(r))
			}
		})
	}
}

// TestSuspensionAskedAgainOnline: TRY_LATER for a suspension means asking
// again: when online checks are allowed, the verifier asks the responder,
// and a later answer that the certificate is good shows the hold lifted.
func TestSuspensionAskedAgainOnline(t *testing.T) {
	p := newTestPKIWith(t, "http://ocsp.invalid/")
	now := time.Now().Truncate(time.Second)
	held := p.ocspRevoked(t, p.leaf, now.Add(-5*time.Minute), now.Add(-10*time.Minute), ocsp.CertificateHold)
	pdf := addDSS(p.signPDF(t, signOpts{}), [][]byte{held}, []*x509.Certificate{p.root})
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: fixedFetcher{p.ocspFor(t, p.leaf)}}, pdf)
	if r.Indication != report.TotalPassed {
		t.Fatalf("the responder says good now: %s", summary(r))
	}
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, Fetcher: fixedFetcher{held}}, pdf)
	if s := r.Signatures[0]; s.SubIndication != report.TryLater || !hasText(s.Errors, "on hold (suspended)") {
		t.Fatalf("still on hold: %s", summary(r))
	}
}
