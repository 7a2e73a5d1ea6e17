package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"golang.org/x/crypto/ocsp"
)

// testPKI is a root → issuing CA → leaves hierarchy made in-process.
type testPKI struct {
	root, ca        *x509.Certificate
	rootKey, caKey  crypto.Signer
	tsa             *x509.Certificate
	tsaKey          crypto.Signer
	ocspCert        *x509.Certificate
	ocspKey         crypto.Signer
	ecLeaf, rsaLeaf *x509.Certificate
	ecKey, rsaKey   crypto.Signer
	serial          int64
	mu              sync.Mutex
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

// getPKI builds the hierarchy once per test binary (RSA key generation is slow).
func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = newTestPKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

func (p *testPKI) next() *big.Int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return big.NewInt(1000 + p.serial)
}

func mustEC(curve elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func newTestPKI() (*testPKI, error) {
	p := &testPKI{}
	now := time.Now().Add(-time.Hour)
	p.rootKey = mustEC(elliptic.P384())
	rootT := &x509.Certificate{
		SerialNumber: p.next(), Subject: pkix.Name{CommonName: "Thiqa Test Root", Organization: []string{"Thiqa test"}, Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	var err error
	if p.root, err = create(rootT, rootT, p.rootKey.Public(), p.rootKey); err != nil {
		return nil, err
	}
	p.caKey = mustEC(elliptic.P256())
	caT := &x509.Certificate{
		SerialNumber: p.next(), Subject: pkix.Name{CommonName: "Thiqa Test Issuing CA", Organization: []string{"Thiqa test"}, Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if p.ca, err = create(caT, p.root, p.caKey.Public(), p.rootKey); err != nil {
		return nil, err
	}
	leaf := func(cn string, key crypto.Signer) (*x509.Certificate, error) {
		return create(&x509.Certificate{
			SerialNumber: p.next(), Subject: pkix.Name{CommonName: cn, Country: []string{"OM"}},
			NotBefore: now, NotAfter: now.Add(2 * 365 * 24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		}, p.ca, key.Public(), p.caKey)
	}
	p.ecKey = mustEC(elliptic.P256())
	if p.ecLeaf, err = leaf("Test Signer EC", p.ecKey); err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p.rsaKey = rk
	if p.rsaLeaf, err = leaf("Test Signer RSA", p.rsaKey); err != nil {
		return nil, err
	}
	eku := func(oid asn1.ObjectIdentifier) pkix.Extension {
		v, _ := asn1.Marshal([]asn1.ObjectIdentifier{oid})
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: v}
	}
	p.tsaKey = mustEC(elliptic.P256())
	if p.tsa, err = create(&x509.Certificate{
		SerialNumber: p.next(), Subject: pkix.Name{CommonName: "Thiqa Test TSA", Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(3 * 365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{eku(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8})},
	}, p.ca, p.tsaKey.Public(), p.caKey); err != nil {
		return nil, err
	}
	p.ocspKey = mustEC(elliptic.P256())
	if p.ocspCert, err = create(&x509.Certificate{
		SerialNumber: p.next(), Subject: pkix.Name{CommonName: "Thiqa Test OCSP", Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{5, 0}}},
	}, p.ca, p.ocspKey.Public(), p.caKey); err != nil {
		return nil, err
	}
	return p, nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func (p *testPKI) chain(rsaKey bool) (crypto.Signer, []*x509.Certificate) {
	if rsaKey {
		return p.rsaKey, []*x509.Certificate{p.rsaLeaf, p.ca}
	}
	return p.ecKey, []*x509.Certificate{p.ecLeaf, p.ca}
}

// Timestamp implements TimestampClient with an in-process TSA.
func (p *testPKI) Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ts := timestamp.Timestamp{
		HashAlgorithm: h, HashedMessage: digest, Time: time.Now(), Accuracy: time.Second,
		Policy: asn1.ObjectIdentifier{0, 4, 0, 2023, 1, 1}, AddTSACertificate: true,
	}
	resp, err := ts.CreateResponseWithOpts(p.tsa, p.tsaKey, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	parsed, err := timestamp.ParseResponse(resp)
	if err != nil {
		return nil, err
	}
	return parsed.RawToken, nil
}

// OCSP implements RevocationSource for certificates of the test CA.
func (p *testPKI) OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	if !bytes.Equal(issuer.Raw, p.ca.Raw) {
		return nil, errors.New("test OCSP: unknown issuer")
	}
	now := time.Now()
	return ocsp.CreateResponse(p.ca, p.ocspCert, ocsp.Response{
		Status: ocsp.Good, SerialNumber: cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		Certificate: p.ocspCert,
	}, p.ocspKey)
}

// CRL implements RevocationSource for the test CAs.
func (p *testPKI) CRL(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
	var key crypto.Signer
	switch {
	case bytes.Equal(issuer.Raw, p.ca.Raw):
		key = p.caKey
	case bytes.Equal(issuer.Raw, p.root.Raw):
		key = p.rootKey
	default:
		return nil, errors.New("test CRL: unknown issuer")
	}
	now := time.Now()
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: p.next(), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
	}, issuer, key)
}

// validation returns ValidationOptions using the in-process TSA and CA.
func (p *testPKI) validation() ValidationOptions {
	return ValidationOptions{TSA: p, Revocation: p, ExtraCerts: []*x509.Certificate{p.root, p.ca, p.tsa}, VRI: true}
}

func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testPDF writes a small classic-xref PDF with n pages and, when big > 0,
// a content stream of big bytes on the first page.
func testPDF(pages int, big int64) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(s string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), s)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	obj("<</Type /Catalog /Pages 2 0 R>>")
	kids := ""
	for i := 0; i < pages; i++ {
		kids += fmt.Sprintf("%d 0 R ", 4+2*i)
	}
	obj(fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", kids, pages))
	obj("<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>")
	for i := 0; i < pages; i++ {
		obj(fmt.Sprintf("<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources <</Font <</F1 3 0 R>>>> /Contents %d 0 R>>", 5+2*i))
		content := fmt.Sprintf("BT /F1 24 Tf 72 760 Td (Thiqa test page %d) Tj ET\n", i+1)
		if i == 0 && big > 0 {
			pad := bytes.Repeat([]byte("% padding padding padding padding padding padding padding padding\n"), int(big/66)+1)
			content += string(pad[:big])
		}
		obj(fmt.Sprintf("<</Length %d>>\nstream\n%s\nendstream", len(content)+0, content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}
