package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// newResponder issues a delegated OCSP responder certificate from p's
// root, with id-pkix-ocsp-nocheck when noCheck, naming ocspURL as its own
// responder when not empty.
func newResponder(t *testing.T, p *testPKI, serial int64, noCheck bool, ocspURL string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	now := time.Now()
	return newResponderValid(t, p, serial, noCheck, ocspURL, now.Add(-time.Hour), now.Add(12*time.Hour))
}

// newResponderValid is newResponder with the given validity period.
func newResponderValid(t *testing.T, p *testPKI, serial int64, noCheck bool, ocspURL string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Test OCSP Responder", Country: []string{"OM"}},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, SubjectKeyId: []byte{byte(serial), 7, 7}}
	if noCheck {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}}
	}
	if ocspURL != "" {
		tmpl.OCSPServer = []string{ocspURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, &k.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// ocspStatus returns a response on cert's status, signed by the root
// (responder nil) or by the delegated responder, which it embeds.
func ocspStatus(t *testing.T, p *testPKI, cert, responder *x509.Certificate, key *ecdsa.PrivateKey, status int, revokedAt time.Time) []byte {
	t.Helper()
	now := time.Now()
	tmpl := ocsp.Response{Status: status, SerialNumber: cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		RevokedAt: revokedAt}
	signer, signKey := p.root, p.rootKey
	if responder != nil {
		signer, signKey, tmpl.Certificate = responder, key, responder
	}
	der, err := ocsp.CreateResponse(p.root, signer, tmpl, signKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// rootCRL returns a CRL of p's root listing the given certificates as
// revoked half an hour ago.
func rootCRL(t *testing.T, p *testPKI, revoked ...*x509.Certificate) []byte {
	t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-30 * time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries}, p.root, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// The signer's status from a delegated responder's OCSP response: with
// id-pkix-ocsp-nocheck the responder is trusted as it stands; without it
// the responder certificate's own status decides whether the response is
// used (RFC 6960 §4.2.2.2.1). Offline: only what the DSS holds.
func TestDelegatedResponderStatus(t *testing.T) {
	p := newTestPKI(t)
	signed := p.signPDF(t, signOpts{})
	checked, checkedKey := newResponder(t, p, 40, false, "")
	noCheck, noCheckKey := newResponder(t, p, 41, true, "")
	halfHourAgo := time.Now().Add(-30 * time.Minute)
	leafBy := func(r *x509.Certificate, k *ecdsa.PrivateKey) []byte {
		return ocspStatus(t, p, p.leaf, r, k, ocsp.Good, time.Time{})
	}
	cases := []struct {
		name        string
		ocsps, crls [][]byte
		want        report.SubIndication // "" for TOTAL-PASSED
		warning     string
	}{
		{"nocheck responder", [][]byte{leafBy(noCheck, noCheckKey)}, nil, "", ""},
		{"responder of unknown status", [][]byte{leafBy(checked, checkedKey)}, nil, report.TryLater,
			`the OCSP response for "SERIALNUMBER=IDCOM-12345678,CN=Citizen One,C=OM" is not used: the revocation status of its responder's certificate "CN=Test OCSP Responder,C=OM" is unknown`},
		{"responder good (CA's OCSP)", [][]byte{leafBy(checked, checkedKey), ocspStatus(t, p, checked, nil, nil, ocsp.Good, time.Time{})}, nil, "", ""},
		{"responder revoked (CA's OCSP)", [][]byte{leafBy(checked, checkedKey), ocspStatus(t, p, checked, nil, nil, ocsp.Revoked, halfHourAgo)}, nil, report.TryLater,
			`its responder's certificate "CN=Test OCSP Responder,C=OM" is revoked`},
		{"responder vouching for itself", [][]byte{leafBy(checked, checkedKey), ocspStatus(t, p, checked, checked, checkedKey, ocsp.Good, time.Time{})}, nil, report.TryLater,
			"is unknown"},
		// The CA's CRL says the responder is revoked and the signer is
		// not: the signer's status comes from the CRL.
		{"responder revoked, signer on the CRL", [][]byte{leafBy(checked, checkedKey)}, [][]byte{rootCRL(t, p, checked)}, "",
			`its responder's certificate "CN=Test OCSP Responder,C=OM" is revoked`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, signed...), tc.ocsps, tc.crls, []*x509.Certificate{p.root})
			rep := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
			s := rep.Signatures[0]
			if tc.want == "" && s.Indication != report.TotalPassed || tc.want != "" && (s.Indication != report.Indeterminate || s.SubIndication != tc.want) {
				t.Fatalf("want %q: %s", tc.want, summary(rep))
			}
			text := strings.Join(s.Warnings, "\n")
			if tc.warning == "" && strings.Contains(text, "responder") || !strings.Contains(text, tc.warning) {
				t.Fatalf("warnings, want %q:\n%s", tc.warning, text)
			}
		})
	}
}

// A delegated responder's certificate must be valid when the response is
// produced (RFC 6960 §4.2.2.2; ocsp.ParseResponseForCert does not check
// it): one that had expired, or was not yet valid, makes the response
// unusable, with or without id-pkix-ocsp-nocheck and whatever its status.
// ocsp.CreateResponse sets producedAt to the current minute.
func TestDelegatedResponderValidity(t *testing.T) {
	p := newTestPKI(t)
	signed := p.signPDF(t, signOpts{})
	now := time.Now()
	expired, expiredKey := newResponderValid(t, p, 42, true, "", now.Add(-2*time.Hour), now.Add(-2*time.Minute))
	early, earlyKey := newResponderValid(t, p, 43, true, "", now.Add(2*time.Minute), now.Add(12*time.Hour))
	expiredChecked, expiredCheckedKey := newResponderValid(t, p, 44, false, "", now.Add(-2*time.Hour), now.Add(-2*time.Minute))
	leafBy := func(r *x509.Certificate, k *ecdsa.PrivateKey) []byte {
		return ocspStatus(t, p, p.leaf, r, k, ocsp.Good, time.Time{})
	}
	const notValid = `the OCSP response for "SERIALNUMBER=IDCOM-12345678,CN=Citizen One,C=OM" is not used: its responder's certificate "CN=Test OCSP Responder,C=OM" was not valid at `
	cases := []struct {
		name        string
		ocsps, crls [][]byte
		want        report.SubIndication // "" for TOTAL-PASSED
	}{
		{"expired nocheck responder", [][]byte{leafBy(expired, expiredKey)}, nil, report.TryLater},
		{"nocheck responder not yet valid", [][]byte{leafBy(early, earlyKey)}, nil, report.TryLater},
		{"expired responder of good status", [][]byte{leafBy(expiredChecked, expiredCheckedKey),
			ocspStatus(t, p, expiredChecked, nil, nil, ocsp.Good, time.Time{})}, nil, report.TryLater},
		// The signer's status then comes from the CA's CRL.
		{"expired responder, signer on the CRL", [][]byte{leafBy(expired, expiredKey)}, [][]byte{rootCRL(t, p)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, signed...), tc.ocsps, tc.crls, []*x509.Certificate{p.root})
			rep := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
			s := rep.Signatures[0]
			if tc.want == "" && s.Indication != report.TotalPassed || tc.want != "" && (s.Indication != report.Indeterminate || s.SubIndication != tc.want) {
				t.Fatalf("want %q: %s", tc.want, summary(rep))
			}
			if text := strings.Join(s.Warnings, "\n"); !strings.Contains(text, notValid) {
				t.Fatalf("warnings, want %q:\n%s", notValid, text)
			}
			if tc.want != "" && !strings.Contains(strings.Join(s.Errors, "\n"), "was not valid at") {
				t.Fatalf("the error does not name the responder's validity: %q", s.Errors)
			}
		})
	}
}

// stubFetcher answers online fetches with fixed values by certificate.
type stubFetcher struct {
	ocsp  map[string][]byte // by subject common name
	crl   []byte
	asked []string
}

func (f *stubFetcher) FetchOCSP(_ context.Context, c, _ *x509.Certificate) ([]byte, error) {
	f.asked = append(f.asked, "OCSP "+c.Subject.CommonName)
	if der, ok := f.ocsp[c.Subject.CommonName]; ok {
		return der, nil
	}
	return nil, errors.New("stub: no response")
}

func (f *stubFetcher) FetchCRL(_ context.Context, c *x509.Certificate) ([]byte, error) {
	f.asked = append(f.asked, "CRL "+c.Subject.CommonName)
	if f.crl != nil {
		return f.crl, nil
	}
	return nil, errors.New("stub: no CRL")
}

// Online, the responder certificate's status is fetched like any other;
// when the responder cannot be relied on, the signer's CRL is fetched
// even though its OCSP responder answered.
func TestDelegatedResponderOnline(t *testing.T) {
	p := newTestPKI(t)
	reissueLeaf(t, p, []string{"http://ocsp.example/"}, []string{"http://crl.example/ca.crl"})
	pdf := p.signPDF(t, signOpts{})
	r, rk := newResponder(t, p, 40, false, "http://ocsp.example/")
	leafByR := ocspStatus(t, p, p.leaf, r, rk, ocsp.Good, time.Time{})
	opts := func(f *stubFetcher) Options {
		return Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: f, AllowOnline: true}
	}

	// The CA answers for its responder: good, the response is used.
	f := &stubFetcher{ocsp: map[string][]byte{"Citizen One": leafByR, r.Subject.CommonName: ocspStatus(t, p, r, nil, nil, ocsp.Good, time.Time{})}}
	if rep := verifyBytes(t, opts(f), pdf); rep.Signatures[0].Indication != report.TotalPassed {
		t.Fatalf("responder good online: %s (asked %q)", summary(rep), f.asked)
	}
	if !strings.Contains(strings.Join(f.asked, ","), "OCSP Test OCSP Responder") {
		t.Fatalf("the responder's status was not asked: %q", f.asked)
	}

	// The responder vouches only for itself: its answer on the signer is
	// set aside, and the signer's CRL decides.
	f = &stubFetcher{ocsp: map[string][]byte{"Citizen One": leafByR, r.Subject.CommonName: ocspStatus(t, p, r, r, rk, ocsp.Good, time.Time{})},
		crl: rootCRL(t, p)}
	rep := verifyBytes(t, opts(f), pdf)
	if rep.Signatures[0].Indication != report.TotalPassed || !strings.Contains(strings.Join(f.asked, ","), "CRL Citizen One") {
		t.Fatalf("signer's CRL after an unusable OCSP response: %s (asked %q)", summary(rep), f.asked)
	}
	if w := strings.Join(rep.Signatures[0].Warnings, "\n"); !strings.Contains(w, "is not used") {
		t.Fatalf("no warning that the OCSP response was set aside: %s", w)
	}
	// Without that CRL: INDETERMINATE / TRY_LATER.
	f.crl, f.asked = nil, nil
	if rep := verifyBytes(t, opts(f), pdf); rep.Signatures[0].SubIndication != report.TryLater {
		t.Fatalf("no usable source: %s (asked %q)", summary(rep), f.asked)
	}
}

// B-LT needs, for an OCSP response by a delegated responder without
// id-pkix-ocsp-nocheck, the revocation information of the responder's
// certificate too (EN 319 142-1 §6.3, RFC 6960 §4.2.2.2.1), from a source
// that needs no check in turn, as validation takes it.
func TestLTDelegatedResponder(t *testing.T) {
	p := newTestPKI(t)
	signed := p.signPDF(t, signOpts{timestamp: true})
	checked, checkedKey := newResponder(t, p, 40, false, "")
	noCheck, noCheckKey := newResponder(t, p, 41, true, "")
	other, otherKey := newResponder(t, p, 45, false, "")
	tsa := p.ocspFor(t, p.tsa)
	leafBy := func(r *x509.Certificate, k *ecdsa.PrivateKey) []byte {
		return ocspStatus(t, p, p.leaf, r, k, ocsp.Good, time.Time{})
	}
	cases := []struct {
		name  string
		ocsps [][]byte
		level string
	}{
		{"nocheck responder", [][]byte{tsa, leafBy(noCheck, noCheckKey)}, "B-LT"},
		{"responder without its status", [][]byte{tsa, leafBy(checked, checkedKey)}, "B-T"},
		{"responder with the CA's OCSP on it", [][]byte{tsa, leafBy(checked, checkedKey), ocspStatus(t, p, checked, nil, nil, ocsp.Good, time.Time{})}, "B-LT"},
		{"responder with a nocheck responder's OCSP on it", [][]byte{tsa, leafBy(checked, checkedKey), ocspStatus(t, p, checked, noCheck, noCheckKey, ocsp.Good, time.Time{})}, "B-LT"},
		{"responder vouching for itself", [][]byte{tsa, leafBy(checked, checkedKey), ocspStatus(t, p, checked, checked, checkedKey, ocsp.Good, time.Time{})}, "B-T"},
		{"responder vouched for by a responder needing a check", [][]byte{tsa, leafBy(checked, checkedKey),
			ocspStatus(t, p, checked, other, otherKey, ocsp.Good, time.Time{}), ocspStatus(t, p, other, nil, nil, ocsp.Good, time.Time{})}, "B-T"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pdf := addDSSWithCRLs(append([]byte{}, signed...), tc.ocsps, nil, []*x509.Certificate{p.root})
			rep := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf)
			s := rep.Signatures[0]
			if s.Level != tc.level || tc.level == "B-LT" && s.Indication != report.TotalPassed {
				t.Fatalf("want %s: %s", tc.level, summary(rep))
			}
		})
	}
	// A CRL of the CA covers the signer whatever its OCSP responder.
	pdf := addDSSWithCRLs(append([]byte{}, signed...), [][]byte{tsa, leafBy(checked, checkedKey)}, [][]byte{rootCRL(t, p)}, []*x509.Certificate{p.root})
	if rep := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}}, pdf); rep.Signatures[0].Level != "B-LT" {
		t.Fatalf("with the CA's CRL: %s", summary(rep))
	}
}
