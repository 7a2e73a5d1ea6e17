package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// ocspGoodAt returns a "good" OCSP response on cert by the test root,
// issued at thisUpdate and valid for two hours.
func (p *testPKI) ocspGoodAt(t testing.TB, cert *x509.Certificate, thisUpdate time.Time) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: ocsp.Good, SerialNumber: cert.SerialNumber,
		ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(2 * time.Hour)}, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// impostorRoot returns a self-signed CA certificate with the test root's
// name and another key.
func (p *testPKI) impostorRoot(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: p.root.Subject, NotBefore: p.root.NotBefore, NotAfter: p.root.NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{9, 9, 9}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// TestRevocationInformationOrder: the verdict does not depend on the order
// in which the document lists its revocation information. A "good" answer
// issued before the information that dates a suspension or a revocation
// does not hide it (it used to, when listed first); a hold lifted and put
// again is on hold; an older delta CRL does not lift a newer complete
// CRL's revocation, nor does any delta's removeFromCRL; a delta CRL not signed by the CA does not make the
// complete CRL unusable (under the best-effort policy that was a pass).
func TestRevocationInformationOrder(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	plain := p.signPDF(t, signOpts{})
	held := now.Add(-10 * time.Minute)
	holdEntry := x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: held, ReasonCode: 6}
	revokedEntry := x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: held, ReasonCode: 1}
	lift := x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: 8}
	impostor, impostorKey := p.impostorRoot(t)
	for _, c := range []struct {
		name        string
		ocsps, crls [][]byte
		policy      RevocationPolicy
		ind         report.Indication
		sub         report.SubIndication
	}{
		{name: "an earlier good OCSP answer, then a CRL listing the hold",
			ocsps: [][]byte{p.ocspGoodAt(t, p.leaf, now.Add(-20*time.Minute))},
			crls:  [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), holdEntry)},
			ind:   report.Indeterminate, sub: report.TryLater},
		{name: "an earlier good CRL listed first, then a CRL listing the hold",
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-20*time.Minute)),
				holdCRL(t, p.root, p.rootKey, 2, nil, now.Add(-5*time.Minute), holdEntry)},
			ind: report.Indeterminate, sub: report.TryLater},
		{name: "an earlier good OCSP answer, then an OCSP answer on hold",
			ocsps: [][]byte{p.ocspGoodAt(t, p.leaf, now.Add(-20*time.Minute)), p.ocspRevoked(t, p.leaf, now.Add(-5*time.Minute), held, ocsp.CertificateHold)},
			ind:   report.Indeterminate, sub: report.TryLater},
		{name: "on hold, lifted, on hold again",
			ocsps: [][]byte{p.ocspRevoked(t, p.leaf, now.Add(-40*time.Minute), now.Add(-50*time.Minute), ocsp.CertificateHold),
				p.ocspGoodAt(t, p.leaf, now.Add(-20*time.Minute))},
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), holdEntry)},
			ind:  report.Indeterminate, sub: report.TryLater},
		{name: "a good OCSP answer does not hide a revocation in a CRL",
			ocsps: [][]byte{p.ocspGoodAt(t, p.leaf, now.Add(-20*time.Minute))},
			crls:  [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), revokedEntry)},
			ind:   report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "an older delta CRL does not lift a newer complete CRL's revocation",
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 5, nil, now.Add(-5*time.Minute), revokedEntry),
				holdCRL(t, p.root, p.rootKey, 4, big.NewInt(3), now.Add(-20*time.Minute), lift)},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a delta CRL's removeFromCRL does not undo a revocation",
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 5, nil, now.Add(-5*time.Minute), revokedEntry),
				holdCRL(t, p.root, p.rootKey, 6, big.NewInt(5), now.Add(-2*time.Minute), lift)},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a delta CRL not signed by the CA, best effort", policy: RevocationBestEffort,
			crls: [][]byte{holdCRL(t, p.root, p.rootKey, 5, nil, now.Add(-5*time.Minute), revokedEntry),
				holdCRL(t, impostor, impostorKey, 6, big.NewInt(5), now.Add(-2*time.Minute))},
			ind: report.Indeterminate, sub: report.RevokedNoPOE},
		{name: "a later good OCSP answer lifts the hold",
			ocsps: [][]byte{p.ocspGoodAt(t, p.leaf, now.Add(-time.Minute))},
			crls:  [][]byte{holdCRL(t, p.root, p.rootKey, 1, nil, now.Add(-5*time.Minute), holdEntry)},
			ind:   report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, plain...), c.ocsps, c.crls, []*x509.Certificate{p.root})
			r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: c.policy}, pdf)
			if s := r.Signatures[0]; s.Indication != c.ind || s.SubIndication != c.sub {
				t.Fatalf("want %s/%s: %s", c.ind, c.sub, summary(r))
			}
		})
	}
}

// TestDeltaCRLAloneIsNotLTData: a delta CRL without its complete CRL is
// not the validation data B-LT asks for (it tells nothing alone); with
// the complete CRL the level is B-LT.
func TestDeltaCRLAloneIsNotLTData(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	plain := p.signPDF(t, signOpts{timestamp: true})
	tsaOCSP := [][]byte{p.ocspFor(t, p.tsa)}
	complete := holdCRL(t, p.root, p.rootKey, 5, nil, now.Add(-5*time.Minute))
	delta := holdCRL(t, p.root, p.rootKey, 6, big.NewInt(5), now.Add(-2*time.Minute))
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, addDSSWithCRLs(append([]byte{}, plain...), tsaOCSP, [][]byte{delta}, []*x509.Certificate{p.root}))
	if s := r.Signatures[0]; s.Level == "B-LT" {
		t.Fatalf("a delta CRL alone: want no B-LT: %s", summary(r))
	}
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, addDSSWithCRLs(append([]byte{}, plain...), tsaOCSP, [][]byte{complete, delta}, []*x509.Certificate{p.root}))
	if s := r.Signatures[0]; s.Level != "B-LT" || s.Indication != report.TotalPassed {
		t.Fatalf("complete and delta CRL: want TOTAL-PASSED at B-LT: %s", summary(r))
	}
}
