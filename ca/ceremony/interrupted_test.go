package ceremony

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// ceremonyWithRoot opens a ceremony folder whose root is created.
func ceremonyWithRoot(t *testing.T) (string, *memToken, *Folder) {
	t.Helper()
	dir := t.TempDir()
	tok := &memToken{keys: map[string]memKey{}}
	f := open(t, dir, tok)
	now := time.Now().UTC().Truncate(time.Second)
	if err := f.CreateRoot(context.Background(), RootRequest{KeyType: "ec-p384", CommonName: "Test Root", Organization: "Test", Country: "OM",
		NotBefore: now, NotAfter: now.AddDate(20, 0, 0)}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	return dir, tok, f
}

// logActions lists the actions the ceremony log records.
func logActions(t *testing.T, dir string) []string {
	t.Helper()
	var acts []string
	err := audit.NewFileStore(filepath.Join(dir, LogFile)).AuditRecords(context.Background(), 1, func(r audit.Record) error {
		acts = append(acts, r.Action)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return acts
}

// TestCertifyInterrupted: a certificate leaves the ceremony folder (--out)
// only once the log records it. When keeping its copy fails, --out is not
// written and nothing is recorded, and a run again certifies the key;
// when --out cannot be written after the log recorded it, the error and a
// run again name the copy in issued/ instead of certifying the key twice.
func TestCertifyInterrupted(t *testing.T) {
	ctx := context.Background()
	dir, tok, f := ceremonyWithRoot(t)
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	req := IssuingRequest{Name: "citizen", CSR: csrFor(t, subKey), CSRFile: "citizen.csr", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), Out: filepath.Join(t.TempDir(), "citizen.pem")}

	// issued/ cannot be made: the signed certificate goes nowhere.
	blocker := filepath.Join(dir, "issued")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.CertifyIssuingCA(ctx, req, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("certify without issued/: %v", err)
	}
	if _, err := os.Stat(req.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a certificate the ceremony log does not record was written to --out")
	}
	if acts := logActions(t, dir); len(acts) != 1 {
		t.Fatalf("the log records %v after a failed certification", acts)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f = open(t, dir, tok)
	if err := f.CertifyIssuingCA(ctx, req, &bytes.Buffer{}); err != nil {
		t.Fatalf("certify again: %v", err)
	}
	if acts := logActions(t, dir); len(acts) != 2 || acts[1] != actCASign {
		t.Fatalf("the log records %v", acts)
	}

	// --out cannot be written after the log recorded the certificate.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	req2 := req
	req2.Name, req2.CSR, req2.Policies = "organisation", csrFor(t, otherKey), ca.IssuingCAPolicies(profiles, "organisation")
	req2.Out = filepath.Join(t.TempDir(), "missing", "organisation.pem")
	err = f.CertifyIssuingCA(ctx, req2, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "signed and recorded in the ceremony log: copy "+filepath.Join(dir, "issued", "organisation-")) {
		t.Fatalf("certify to an unwritable --out: %v", err)
	}
	req2.Out = filepath.Join(t.TempDir(), "organisation.pem")
	var inUse *ca.KeyInUseError
	err = f.CertifyIssuingCA(ctx, req2, &bytes.Buffer{})
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "its certificate is in "+filepath.Join(dir, "issued", "organisation-")) {
		t.Fatalf("certify the recorded key again: %v", err)
	}
	if acts := logActions(t, dir); len(acts) != 3 {
		t.Fatalf("the log records %v", acts)
	}
}

// TestSignCRLInterrupted: a CRL leaves the ceremony folder only once the
// log records its number; a copy an interrupted run left unrecorded is set
// aside, not reused nor in the way, and the number is signed again.
func TestSignCRLInterrupted(t *testing.T) {
	ctx := context.Background()
	dir, tok, f := ceremonyWithRoot(t)
	set, err := crl.Config{Validity: 30 * 24 * time.Hour, BaseURL: "http://pki.test"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	out := filepath.Join(t.TempDir(), "root.crl")
	blocker := filepath.Join(dir, "crls")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.SignCRL(ctx, CRLRequest{Settings: set, Now: now, Out: out}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("sign without crls/: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a CRL whose number the ceremony log does not record was written to --out")
	}
	if acts := logActions(t, dir); len(acts) != 1 {
		t.Fatalf("the log records %v after a failed CRL", acts)
	}

	// What a run interrupted between keeping the copy and recording it leaves.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(blocker, "root-1.crl")
	if err := os.WriteFile(orphan, []byte("unrecorded"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f = open(t, dir, tok)
	var said bytes.Buffer
	if err := f.SignCRL(ctx, CRLRequest{Settings: set, Now: now, Out: out}, &said); err != nil {
		t.Fatalf("sign again: %v", err)
	}
	if !strings.Contains(said.String(), "root CRL number 1 signed") || !strings.Contains(said.String(), "unrecorded in the folder; it is kept as "+orphan+".unrecorded-") {
		t.Fatalf("ca crl said:\n%s", said.String())
	}
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(orphan)
	if err != nil || !bytes.Equal(kept, der) {
		t.Fatalf("crls/root-1.crl is not the CRL written: %v", err)
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		t.Fatal(err)
	}
	if acts := logActions(t, dir); len(acts) != 2 || acts[1] != actCRLSign {
		t.Fatalf("the log records %v", acts)
	}
}

// TestRevokeInterrupted: a run of ca crl --revoke interrupted after the
// log recorded the revocation, before the CRL: the run again with
// --revoke is refused and says to run without it; that run signs the CRL
// listing the revocation. Once a CRL lists it, the refusal says so.
func TestRevokeInterrupted(t *testing.T) {
	ctx := context.Background()
	dir, tok, f := ceremonyWithRoot(t)
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	cert := filepath.Join(t.TempDir(), "citizen.pem")
	if err := f.CertifyIssuingCA(ctx, IssuingRequest{Name: "citizen", CSR: csrFor(t, subKey), CSRFile: "citizen.csr", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), Out: cert}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var serial string
	for s := range f.state.issued {
		serial = s
	}
	set, err := crl.Config{Validity: 30 * 24 * time.Hour, BaseURL: "http://pki.test"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	reason, err := revocation.ParseReason("keyCompromise")
	if err != nil {
		t.Fatal(err)
	}
	// What a kill after the revocation's record and before the CRL's leaves.
	if _, err := f.record(ctx, actCARevoke, serial, caRevoked{Serial: serial, Name: "citizen", Reason: reason.String(), RevokedAt: now}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f = open(t, dir, tok)
	out := filepath.Join(t.TempDir(), "root.crl")
	err = f.SignCRL(ctx, CRLRequest{Revoke: serial, Reason: reason, Settings: set, Now: now, Out: out}, &bytes.Buffer{})
	if !errors.Is(err, ErrAlreadyRevoked) || !strings.Contains(err.Error(), "no CRL lists it yet") ||
		!strings.Contains(err.Error(), "run `thiqa ca crl` again without --revoke") {
		t.Fatalf("--revoke again after an interrupted run: %v", err)
	}
	if err := f.SignCRL(ctx, CRLRequest{Settings: set, Now: now, Out: out}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	list, err := x509.ParseRevocationList(der)
	want, _ := new(big.Int).SetString(serial, 16)
	if err != nil || len(list.RevokedCertificateEntries) != 1 || list.RevokedCertificateEntries[0].SerialNumber.Cmp(want) != 0 {
		t.Fatalf("the CRL signed after the interrupted run (%v) does not list serial %s alone", err, serial)
	}
	err = f.SignCRL(ctx, CRLRequest{Revoke: serial, Reason: reason, Settings: set, Now: now, Out: filepath.Join(t.TempDir(), "root.crl")}, &bytes.Buffer{})
	if !errors.Is(err, ErrAlreadyRevoked) || !strings.Contains(err.Error(), "CRL number 1 lists it") {
		t.Fatalf("--revoke again once listed: %v", err)
	}
}
