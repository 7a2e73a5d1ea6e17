package ceremony

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pemcert"
)

// FuzzReadAdoption: whatever the copies an operator carries to `thiqa ca
// root adopt` hold (the root certificate, an issuing CA certificate of
// the ca folder, the last root CRL), reading them and checking what they
// say (adoptedDetails) never panics; what ReadAdoption accepts is the
// root of the file, issuing CA certificates it signed, a base URL and the
// CRL's DER.
func FuzzReadAdoption(f *testing.F) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, NotBefore: now, NotAfter: now.AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		f.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	subKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(0x1234), Subject: pkix.Name{CommonName: "Citizen"},
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, CRLDistributionPoints: []string{"http://pki.test/crl/root.crl"}},
		root, subKey.Public(), rootKey)
	if err != nil {
		f.Fatal(err)
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: now, NextUpdate: now.AddDate(0, 1, 0),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(0x1234), RevocationTime: now, ReasonCode: 1}}}, root, rootKey)
	if err != nil {
		f.Fatal(err)
	}
	rootPEM, subPEM := pemcert.Encode(rootDER), pemcert.Encode(subDER)
	f.Add(rootPEM, subPEM, crlDER)
	f.Add(rootPEM, subPEM, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}))
	f.Add(rootPEM, rootPEM, crlDER)
	f.Add(subPEM, rootPEM, []byte("-----BEGIN X509 CRL-----\n\n-----END X509 CRL-----\n"))
	f.Add([]byte(""), []byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, rootRaw, caRaw, crlRaw []byte) {
		dir := t.TempDir()
		files := AdoptFiles{RootCert: filepath.Join(dir, "root.pem"), CACerts: filepath.Join(dir, "ca"), CRL: filepath.Join(dir, "root.crl")}
		if err := os.Mkdir(files.CACerts, 0o700); err != nil {
			t.Fatal(err)
		}
		for p, b := range map[string][]byte{files.RootCert: rootRaw, filepath.Join(files.CACerts, "citizen.pem"): caRaw, files.CRL: crlRaw} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		req, err := ReadAdoption(files)
		if err != nil {
			return
		}
		if blk, _ := pem.Decode(rootRaw); blk == nil || !bytes.Equal(blk.Bytes, req.Root.Raw) {
			t.Fatalf("the root read is not the file's")
		}
		if len(req.Issued) != 1 || req.Issued[0].Cert.CheckSignatureFrom(req.Root) != nil || req.PublicBaseURL == "" || len(req.LastCRL) == 0 {
			t.Fatalf("accepted %+v", req)
		}
		_, _ = adoptedDetails(req)
	})
}
