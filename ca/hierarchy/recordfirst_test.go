package hierarchy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// orderAudit notes, for each record about a file of the CA folder, whether
// the file was there already when the record was appended.
type orderAudit struct {
	certDir string
	actions []string
	late    []string // records appended after their file
}

func (a *orderAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	a.actions = append(a.actions, e.Action)
	d, _ := e.Details.(map[string]any)
	var p string
	switch e.Action {
	case "ca.certificate.create", "ca.certificate.import":
		p = CertPath(a.certDir, e.Object)
	case "ca.csr.create", "ca.rollover":
		p, _ = d["csr"].(string)
	}
	if _, err := os.Stat(p); p != "" && err == nil {
		a.late = append(a.late, e.Action+" after "+p)
	}
	return audit.Record{}, nil
}

// TestRecordBeforeFile: every step that leaves a file in the CA folder
// (a development CA's certificate, a CSR, an imported certificate, a
// rollover) records it in the audit log before the file appears. The
// other order lost the record for good when a kill came between the two:
// a run again skips the step because its file exists. A file that cannot
// be written after its record is written by the run again.
func TestRecordBeforeFile(t *testing.T) {
	ctx := context.Background()

	// Development init: the root and the issuing CA.
	dev := testConfig(t.TempDir())
	devTok, devLog := &memToken{keys: map[string]memKey{}}, &orderAudit{certDir: dev.CertDir}
	if err := Init(ctx, dev, devTok, devLog, io.Discard); err != nil {
		t.Fatal(err)
	}
	devParts, err := Find(ctx, dev, devTok)
	if err != nil {
		t.Fatal(err)
	}

	// Offline root: the CSR.
	c := testConfig(t.TempDir())
	c.RootOffline, c.Root.Key, c.Root.KeyLabel = true, "", ""
	if _, err := InstallRoot(c, devParts[0].Cert); err != nil {
		t.Fatal(err)
	}
	tok, log := &memToken{keys: map[string]memKey{}}, &orderAudit{certDir: c.CertDir}
	if err := Init(ctx, c, tok, log, io.Discard); !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline: %v", err)
	}

	// The import of generation 1, whose file cannot be written at first.
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	certify := func(n int) *x509.Certificate {
		t.Helper()
		g, err := findGeneration(ctx, c, tok, c.Issuers[0], n)
		if err != nil || g.key == nil {
			t.Fatalf("generation %d: %v", n, err)
		}
		cn := "Test citizen" // the CSR's subject, as the ceremony certifies it
		if n > 1 {
			cn += fmt.Sprintf(" G%d", n)
		}
		cert, err := ca.CreateIssuingCA(devParts[0].Cert, devParts[0].Key, g.key, ca.IssuingCAConfig{Name: "citizen", CommonName: cn,
			Organization: "Thiqa", Country: "OM", Validity: 365 * 24 * time.Hour, BaseURL: c.BaseURL, Policies: ca.IssuingCAPolicies(profiles, "citizen")})
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	cert := certify(1)
	blocked := CertPath(c.CertDir, "citizen")
	if err := os.Symlink("nowhere", blocked); err != nil { // a dangling link in the certificate's place
		t.Fatal(err)
	}
	err = Import(ctx, c, tok, log, "citizen", cert, devParts[0].Cert, "cli:test", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("import with the certificate's place taken: %v", err)
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := Import(ctx, c, tok, log, "citizen", cert, devParts[0].Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import again: %v", err)
	}

	// A rollover and the import of generation 2.
	if err := Rollover(ctx, c, tok, log, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := Import(ctx, c, tok, log, "citizen", certify(2), devParts[0].Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import of generation 2: %v", err)
	}

	if len(devLog.late) != 0 || len(log.late) != 0 {
		t.Fatalf("recorded after the file: %q %q", devLog.late, log.late)
	}
	want := "ca.csr.create,ca.certificate.import,ca.certificate.import,ca.rollover,ca.csr.create,ca.certificate.import"
	if got := strings.Join(log.actions, ","); got != want {
		t.Fatalf("the log records %s, want %s", got, want)
	}
}
