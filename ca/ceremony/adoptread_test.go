package ceremony

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
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// Keys lists the keys of memToken (KeyLister).
func (t *memToken) Keys(context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	for label, k := range t.keys {
		out = append(out, KeyInfo{Label: label, URI: k.URI(), Public: k.Public()})
	}
	return out, nil
}

// TestReadAdoptionAndFindRootKey reads a deployment's copies as `thiqa ca
// root adopt` does (its root, a copy of its ca folder holding the root's
// and an issuing CA's certificates, its last root CRL) and finds the
// root's key on a copy of its token by its public key; a token without it
// is a *NoRootKeyError naming the keys it holds.
func TestReadAdoptionAndFindRootKey(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	src := t.TempDir()
	tok := &memToken{keys: map[string]memKey{}}
	s := open(t, src, tok)
	var out bytes.Buffer
	if err := s.CreateRoot(ctx, RootRequest{KeyType: "ec-p384", CommonName: "Old Root", Country: "OM", NotBefore: now, NotAfter: now.AddDate(20, 0, 0)}, &out); err != nil {
		t.Fatal(err)
	}
	profiles, _ := policies.DefaultProfiles(policies.DefaultsConfig{})
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	caDir := t.TempDir()
	if err := s.CertifyIssuingCA(ctx, IssuingRequest{Name: "citizen", CSR: csrFor(t, subKey), CSRFile: "citizen.csr", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), Out: filepath.Join(caDir, "citizen.pem")}, &out); err != nil {
		t.Fatal(err)
	}
	set, _ := crl.Config{Validity: 30 * 24 * time.Hour, BaseURL: "http://pki.test"}.Validate()
	crlFile := filepath.Join(t.TempDir(), "root.crl")
	if err := s.SignCRL(ctx, CRLRequest{Settings: set, Now: now, Out: crlFile}, &out); err != nil {
		t.Fatal(err)
	}
	rootRaw, _ := os.ReadFile(filepath.Join(src, RootFile))
	rootFile := filepath.Join(caDir, "root.pem")
	if err := os.WriteFile(rootFile, rootRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	files := AdoptFiles{RootCert: rootFile, CACerts: caDir, CRL: crlFile}
	req, err := ReadAdoption(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Issued) != 1 || req.Issued[0].Name != "citizen" || req.PublicBaseURL != "http://pki.test" || len(req.LastCRL) == 0 {
		t.Fatalf("read %+v", req)
	}
	files.PublicBaseURL = "http://other.test"
	if req, err := ReadAdoption(files); err != nil || req.PublicBaseURL != "http://other.test" {
		t.Fatalf("with a base URL: %v %q", err, req.PublicBaseURL)
	}

	bad := filepath.Join(t.TempDir(), "bad.crl")
	if err := os.WriteFile(bad, []byte("no CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAdoption(AdoptFiles{RootCert: rootFile, CACerts: caDir, CRL: bad}); !errors.Is(err, crl.ErrMalformed) {
		t.Fatalf("a malformed CRL: %v", err)
	}
	// An issuing CA certificate that names no root CRL: the base URL must
	// be given.
	noDP := t.TempDir()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "No DP"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, req.Root, subKey.Public(), tok.keys["root-ca"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noDP, "nodp.pem"), pemcert.Encode(der), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadAdoptedCAs(noDP, req.Root); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("no root CRL named: %v", err)
	}
	files.CACerts, files.PublicBaseURL = noDP, ""
	if _, err := ReadAdoption(files); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("no root CRL named, no base URL given: %v", err)
	}
	files.PublicBaseURL = "http://pki.test"
	if req, err := ReadAdoption(files); err != nil || len(req.Issued) != 1 || req.PublicBaseURL != "http://pki.test" {
		t.Fatalf("no root CRL named, --public-base-url given: %v", err)
	}
	if _, _, err := ReadAdoptedCAs(t.TempDir(), req.Root); err == nil || errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("an empty ca folder: %v", err)
	}

	label, err := FindRootKey(ctx, tok, "copy", req.Root)
	if err != nil || label != "root-ca" {
		t.Fatalf("FindRootKey: %q %v", label, err)
	}
	other := &memToken{keys: map[string]memKey{}}
	for _, l := range []string{"tsa", "citizen"} {
		if _, err := other.GenerateKey(ctx, l, "ec-p256"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = FindRootKey(ctx, other, "copy", req.Root)
	var no *NoRootKeyError
	if !errors.As(err, &no) || no.Token != "copy" || !slices.Equal(no.Labels, []string{"citizen", "tsa"}) {
		t.Fatalf("a token without the root key: %v", err)
	}
}
