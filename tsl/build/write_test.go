package build

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/verify/tsl"
)

type memAudit struct{ entries []audit.Entry }

func (a *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	a.entries = append(a.entries, e)
	return audit.Record{}, nil
}

// Write records the list in the audit log, writes it into a folder it
// creates, and the next sequence number is read back from the file.
func TestWriteAndNextSequenceAt(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signer"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(t.TempDir(), "tsl", "tsl.xml")
	if n := NextSequenceAt(path); n != 1 {
		t.Fatalf("no list yet: next sequence %d", n)
	}
	log := &memAudit{}
	o := Options{Sequence: 7, Territory: "OM", Operator: "Thiqa", Provider: "Thiqa", IssueDate: now, NextUpdate: now.Add(time.Hour),
		Signer: k, Certificate: cert, Services: []Service{{Type: tsl.SvcTypeCAQC, Name: "CA", Certificates: []*x509.Certificate{cert}, Status: tsl.StatusGranted, Since: now}}}
	if err := Write(context.Background(), o, path, log, "operator", "pkcs11:object=tsl-signer"); err != nil {
		t.Fatal(err)
	}
	if n := NextSequenceAt(path); n != 8 {
		t.Fatalf("next sequence %d, want 8", n)
	}
	if len(log.entries) != 1 || log.entries[0].Action != "tsl.build" || log.entries[0].Object != path {
		t.Fatalf("audit %+v", log.entries)
	}
	if d, _ := log.entries[0].Details.(map[string]any); d["sequence"] != 7 || d["signer"] != "pkcs11:object=tsl-signer" {
		t.Fatalf("audit %+v", log.entries)
	}
}
