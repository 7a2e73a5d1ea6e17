package ceremony

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
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
	"github.com/thiqa/thiqa/policies"
)

// TestAdoptRoot: a root made elsewhere, with an issuing CA it certified
// and revoked on its last CRL, is adopted from a copy of its token: the
// folder then refuses that CA's key, knows the revocation, and continues
// the CRL numbers AdoptCRLNumberGap above. A token whose key is not the
// root's is refused with nothing written; a run again changes nothing;
// another root is refused.
func TestAdoptRoot(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	// The deployment: a root, an issuing CA, a CRL revoking it (number 1).
	src := t.TempDir()
	srcTok := &memToken{keys: map[string]memKey{}}
	s := open(t, src, srcTok)
	var out bytes.Buffer
	if err := s.CreateRoot(ctx, RootRequest{KeyType: "ec-p384", CommonName: "Old Root", Country: "OM", NotBefore: now, NotAfter: now.AddDate(20, 0, 0)}, &out); err != nil {
		t.Fatal(err)
	}
	profiles, _ := policies.DefaultProfiles(policies.DefaultsConfig{})
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	issuedFile := filepath.Join(t.TempDir(), "citizen.pem")
	req := IssuingRequest{Name: "citizen", CSR: csrFor(t, subKey), CSRFile: "citizen.csr", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), Out: issuedFile}
	if err := s.CertifyIssuingCA(ctx, req, &out); err != nil {
		t.Fatal(err)
	}
	set, _ := crl.Config{Validity: 30 * 24 * time.Hour, BaseURL: "http://pki.test"}.Validate()
	issuedRaw, _ := os.ReadFile(issuedFile)
	issued := mustParse(t, issuedRaw)
	serial := hex.EncodeToString(issued.SerialNumber.Bytes()) // as CRLRequest.Revoke wants it (normalised)
	lastCRL := filepath.Join(t.TempDir(), "root.crl")
	if err := s.SignCRL(ctx, CRLRequest{Revoke: serial, Reason: revocation.Superseded, Settings: set, Now: now, Out: lastCRL}, &out); err != nil {
		t.Fatal(err)
	}
	rootRaw, _ := os.ReadFile(filepath.Join(src, RootFile))
	root := mustParse(t, rootRaw)
	crlDER, _ := os.ReadFile(lastCRL)
	adoptReq := AdoptRequest{Root: root, Issued: []AdoptedCA{{Name: "citizen", Cert: issued}}, LastCRL: crlDER, PublicBaseURL: "http://pki.test"}

	// A token whose root-ca is another key: refused, nothing written.
	wrong := t.TempDir()
	otherKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	w := open(t, wrong, &memToken{keys: map[string]memKey{"root-ca": {otherKey, "root-ca"}}})
	if err := w.AdoptRoot(ctx, adoptReq, &out); !errors.Is(err, ErrNotRootKey) {
		t.Fatalf("adopting with another key: %v", err)
	}
	if left, _ := os.ReadDir(wrong); len(left) != 0 {
		t.Fatalf("a refused adoption left %v", left)
	}

	// The copy of the token.
	dst := t.TempDir()
	tok := &memToken{keys: map[string]memKey{"root-ca": srcTok.keys["root-ca"]}}
	f := open(t, dst, tok)
	out.Reset()
	if err := f.AdoptRoot(ctx, adoptReq, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "root CA adopted") || !strings.Contains(out.String(), "continue after 1001") {
		t.Fatalf("adopt said:\n%s", out.String())
	}
	f.Close()
	f = open(t, dst, tok)
	out.Reset()
	if err := f.AdoptRoot(ctx, adoptReq, &out); err != nil || !strings.Contains(out.String(), "already adopted") {
		t.Fatalf("adopt again: %v\n%s", err, out.String())
	}
	req.Out = filepath.Join(t.TempDir(), "again.pem")
	var inUse *ca.KeyInUseError
	if err := f.CertifyIssuingCA(ctx, req, &out); !errors.As(err, &inUse) {
		t.Fatalf("the adopted issuing CA's key again: %v", err)
	}
	if err := f.SignCRL(ctx, CRLRequest{Revoke: serial, Settings: set, Now: now, Out: lastCRL + "x"}, &out); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("revoking the adopted revoked CA again: %v", err)
	}
	next := filepath.Join(t.TempDir(), "next.crl")
	if err := f.SignCRL(ctx, CRLRequest{Settings: set, Now: now, Out: next}, &out); err != nil {
		t.Fatal(err)
	}
	der, _ := os.ReadFile(next)
	list, err := x509.ParseRevocationList(der)
	if err != nil || list.CheckSignatureFrom(root) != nil || list.Number.Int64() != 1+AdoptCRLNumberGap+1 ||
		len(list.RevokedCertificateEntries) != 1 || list.RevokedCertificateEntries[0].SerialNumber.Cmp(issued.SerialNumber) != 0 {
		t.Fatalf("the first CRL after the adoption: %v, number %v", err, list.Number)
	}

	// Another root into the same folder: refused.
	otherRoot, err := ca.CreateRoot(otherKey, ca.RootConfig{CommonName: "Other", Country: "OM", NotBefore: now, NotAfter: now.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	other := adoptReq
	other.Root = otherRoot
	if err := f.AdoptRoot(ctx, other, &out); !errors.Is(err, ErrOtherRoot) {
		t.Fatalf("adopting another root: %v", err)
	}
}
