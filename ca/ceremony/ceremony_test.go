package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// memKey is a key held in memory, named by a made-up URI.
type memKey struct {
	crypto.Signer
	label string
}

func (k memKey) URI() string { return "pkcs11:token=test;object=" + k.label }

// memToken is an offline token in memory; opened counts its openings.
type memToken struct {
	keys   map[string]memKey
	opened int
}

func (t *memToken) FindKey(_ context.Context, label string) (Key, error) {
	if k, ok := t.keys[label]; ok {
		return k, nil
	}
	return nil, ErrKeyNotFound
}

func (t *memToken) GenerateKey(_ context.Context, label, keyType string) (Key, error) {
	curve := map[string]elliptic.Curve{"ec-p256": elliptic.P256(), "ec-p384": elliptic.P384()}[keyType]
	if curve == nil {
		return nil, errors.New("unsupported key type " + keyType)
	}
	s, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, err
	}
	t.keys[label] = memKey{s, label}
	return t.keys[label], nil
}

func (t *memToken) DeleteKey(_ context.Context, label string) error {
	delete(t.keys, label)
	return nil
}
func (t *memToken) Close() error { return nil }

func open(t *testing.T, dir string, tok *memToken) *Folder {
	t.Helper()
	f, err := Open(context.Background(), Options{Dir: dir, PublicBaseURL: "http://pki.test", RootKey: "pkcs11:token=test;object=root-ca",
		RootKeyLabel: "root-ca", Actor: "cli:test", OpenToken: func(context.Context) (Token, error) { tok.opened++; return tok, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func csrFor(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Test Citizen CA", Country: []string{"OM"}}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCeremony runs the acts of a key ceremony on a folder and an
// in-memory token: the root, an issuing CA, a CRL revoking it; the log
// replays into the same state after reopening; each refusal changes
// nothing; an edited log stops every act and is named by Verify.
func TestCeremony(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tok := &memToken{keys: map[string]memKey{}}
	f := open(t, dir, tok)
	now := time.Now().UTC().Truncate(time.Second)
	var out bytes.Buffer
	err := f.CreateRoot(ctx, RootRequest{KeyType: "ec-p384", CommonName: "Test Root", Organization: "Test", Country: "OM",
		NotBefore: now, NotAfter: now.AddDate(20, 0, 0), ConfigFile: "ceremony.yaml"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ceremony log  entry 1, hash ") || !strings.Contains(out.String(), "SHA-256 fingerprint: ") {
		t.Fatalf("root create said:\n%s", out.String())
	}
	if err := f.CreateRoot(ctx, RootRequest{KeyType: "ec-p384", CommonName: "Again"}, &out); err == nil || !strings.Contains(err.Error(), "already has a root") {
		t.Fatalf("a second root: %v", err)
	}

	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	issued := filepath.Join(t.TempDir(), "citizen.pem")
	req := IssuingRequest{Name: "citizen", CSR: csrFor(t, subKey), CSRFile: "citizen.csr", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), Out: issued}
	out.Reset()
	if err := f.CertifyIssuingCA(ctx, req, &out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(issued)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(dir, RootFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, rootCert := mustParse(t, raw), mustParse(t, root)
	if err := cert.CheckSignatureFrom(rootCert); err != nil || cert.CRLDistributionPoints[0] != "http://pki.test/crl/root.crl" {
		t.Fatalf("issuing CA certificate: %v, %v", err, cert.CRLDistributionPoints)
	}
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())

	// The same key again, reopened from the log: refused as in use.
	f.Close()
	f = open(t, dir, tok)
	req.Out = filepath.Join(t.TempDir(), "again.pem")
	var inUse *ca.KeyInUseError
	if err := f.CertifyIssuingCA(ctx, req, &out); !errors.As(err, &inUse) {
		t.Fatalf("the same key twice: %v", err)
	}
	if _, err := os.Stat(req.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused certification wrote its --out")
	}

	set, err := crl.Config{Validity: 30 * 24 * time.Hour, BaseURL: "http://pki.test"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	crlOut := filepath.Join(t.TempDir(), "root.crl")
	out.Reset()
	if err := f.SignCRL(ctx, CRLRequest{Revoke: serial, Reason: revocation.Reason(1), Settings: set, Now: now, Out: crlOut}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "root CRL number 1 signed: 1 revoked issuing CA(s)") {
		t.Fatalf("ca crl said:\n%s", out.String())
	}
	der, _ := os.ReadFile(crlOut)
	list, err := x509.ParseRevocationList(der)
	if err != nil || list.CheckSignatureFrom(rootCert) != nil || len(list.RevokedCertificateEntries) != 1 {
		t.Fatalf("root CRL: %v", err)
	}
	err = f.SignCRL(ctx, CRLRequest{Revoke: serial, Settings: set, Now: now, Out: crlOut + "2"}, &out)
	if !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("revoking twice: %v", err)
	}

	out.Reset()
	if err := Verify(ctx, dir, &out); err != nil || !strings.Contains(out.String(), "ceremony log OK: 4 entries") ||
		!strings.Contains(out.String(), "revoked (keyCompromise)") || !strings.Contains(out.String(), "last CRL      number 1") {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}

	// An edited log: Verify names the entry, Open refuses.
	logPath := filepath.Join(dir, LogFile)
	orig, _ := os.ReadFile(logPath)
	if err := os.WriteFile(logPath, bytes.Replace(orig, []byte(`"pathLen":0`), []byte(`"pathLen":1`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Verify(ctx, dir, &out); !errors.Is(err, ErrBroken) || !strings.Contains(out.String(), "BROKEN at entry 2") {
		t.Fatalf("verify an edited log: %v\n%s", err, out.String())
	}
	opened := tok.opened
	var le *LogError
	if _, err := Open(ctx, Options{Dir: dir}); !errors.As(err, &le) || le.Seq != 2 {
		t.Fatalf("open an edited log: %v", err)
	}
	if tok.opened != opened {
		t.Fatal("the token was opened for an edited log")
	}
}

func mustParse(t *testing.T, raw []byte) *x509.Certificate {
	t.Helper()
	c, err := pemcert.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
