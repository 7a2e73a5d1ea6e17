package verify

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// ocspAnswer returns an OCSP response on cert by the test root with the
// given status, times (a zero nextUpdate leaves it out) and, for
// "revoked", revocation time and reason.
func (p *testPKI) ocspAnswer(t testing.TB, cert *x509.Certificate, status int, thisUpdate, nextUpdate, revokedAt time.Time, reason int) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: status, SerialNumber: cert.SerialNumber,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedAt: revokedAt, RevocationReason: reason}, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestRevocationFreshness: a replayed genuine "good" answer without a
// nextUpdate tells nothing of the status after it was issued (it used to
// be fresh for ever: a revoked signer passed); information too old to
// tell the status at the validation time still dates a revocation or a
// suspension before it (it used to be skipped, so that an older "good"
// CRL with a longer validity passed a signer the document itself shows
// revoked or on hold).
func TestRevocationFreshness(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	plain := p.signPDF(t, signOpts{})
	heldAt := now.Add(-40 * time.Minute)
	longGoodCRL := func() []byte { // issued 50 minutes ago, valid for a day
		return holdCRLValid(t, p, 1, now.Add(-50*time.Minute), now.Add(24*time.Hour))
	}
	for _, c := range []struct {
		name        string
		ocsps, crls [][]byte
		ind         report.Indication
		sub         report.SubIndication
	}{
		{name: "a good OCSP answer without nextUpdate, issued before the validation time",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-50*time.Minute), time.Time{}, time.Time{}, 0)},
			ind:   report.Indeterminate, sub: report.TryLater},
		{name: "a good OCSP answer covering the validation time",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-50*time.Minute), now.Add(time.Hour), time.Time{}, 0)},
			ind:   report.TotalPassed},
		{name: "a stale OCSP answer on hold, and an older good CRL valid longer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Revoked, now.Add(-30*time.Minute), now.Add(-20*time.Minute), heldAt, ocsp.CertificateHold)},
			crls:  [][]byte{longGoodCRL()},
			ind:   report.Indeterminate, sub: report.TryLater},
		{name: "a stale OCSP answer revoked, and an older good CRL valid longer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Revoked, now.Add(-30*time.Minute), now.Add(-20*time.Minute), heldAt, ocsp.KeyCompromise)},
			crls:  [][]byte{longGoodCRL()},
			ind:   report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a stale CRL listing the hold, and an older good OCSP answer valid longer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-50*time.Minute), now.Add(24*time.Hour), time.Time{}, 0)},
			crls: [][]byte{holdCRLValid(t, p, 2, now.Add(-30*time.Minute), now.Add(-20*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: heldAt, ReasonCode: 6})},
			ind: report.Indeterminate, sub: report.TryLater},
		{name: "a stale CRL listing the revocation, and an older good OCSP answer valid longer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-50*time.Minute), now.Add(24*time.Hour), time.Time{}, 0)},
			crls: [][]byte{holdCRLValid(t, p, 2, now.Add(-30*time.Minute), now.Add(-20*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: heldAt, ReasonCode: 1})},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a CRL with a backdated thisUpdate listing a hold after it, and a good answer issued before the hold",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-30*time.Minute), now.Add(time.Hour), time.Time{}, 0)},
			crls: [][]byte{holdCRLValid(t, p, 2, now.Add(-40*time.Minute), now.Add(time.Hour),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-20 * time.Minute), ReasonCode: 6})},
			ind: report.Indeterminate, sub: report.TryLater},
		{name: "a stale CRL listing a revocation dated after its thisUpdate, and an older good answer valid longer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-55*time.Minute), now.Add(time.Hour), time.Time{}, 0)},
			crls: [][]byte{holdCRLValid(t, p, 2, now.Add(-50*time.Minute), now.Add(-10*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: 1})},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a stale OCSP answer on hold, lifted by a later good answer",
			ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Revoked, now.Add(-30*time.Minute), now.Add(-20*time.Minute), heldAt, ocsp.CertificateHold),
				p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-10*time.Minute), now.Add(time.Hour), time.Time{}, 0)},
			ind: report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, plain...), c.ocsps, c.crls, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
			if s := r.Signatures[0]; s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
		})
	}
}

// holdCRLValid is a complete CRL by the test root, issued at thisUpdate
// and valid until nextUpdate.
func holdCRLValid(t testing.TB, p *testPKI, number int64, thisUpdate, nextUpdate time.Time, entries ...x509.RevocationListEntry) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedCertificateEntries: entries}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.root, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
