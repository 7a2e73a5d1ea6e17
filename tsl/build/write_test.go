package build

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
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

// Trail answers from the entries recorded, newest first (as store.DB).
func (a *memAudit) Trail(_ context.Context, objects []string, limit int) ([]ca.TrailEntry, error) {
	var out []ca.TrailEntry
	for i := len(a.entries) - 1; i >= 0 && len(out) < limit; i-- {
		e := a.entries[i]
		if !slices.Contains(objects, e.Object) {
			continue
		}
		raw, err := json.Marshal(e.Details)
		if err != nil {
			return nil, err
		}
		out = append(out, ca.TrailEntry{Seq: int64(i + 1), Action: e.Action, Object: e.Object, Outcome: e.Outcome, Details: raw})
	}
	return out, nil
}

// A crash between the audit record of a list and its file leaves the log
// recording a number issued that no file shows: the next list takes a
// higher one (TS 119 612 requires TSLSequenceNumber to increase), and a
// --sequence the log records as issued is refused.
func TestSequenceNeverReusesARecordedNumber(t *testing.T) {
	ctx := context.Background()
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
	dir := t.TempDir()
	path := filepath.Join(dir, "tsl", "tsl.xml")
	log := &memAudit{}
	write := func(seq int) error {
		o := Options{Sequence: seq, Territory: "OM", Operator: "Thiqa", Provider: "Thiqa", IssueDate: now, NextUpdate: now.Add(time.Hour),
			Signer: k, Certificate: cert, Services: []Service{{Type: tsl.SvcTypeCAQC, Name: "CA", Certificates: []*x509.Certificate{cert}, Status: tsl.StatusGranted, Since: now}}}
		return Write(ctx, o, path, log, "operator", "pkcs11:object=tsl-signer")
	}
	seq, err := Sequence(ctx, path, 0, log)
	if err != nil || seq != 1 {
		t.Fatalf("no list yet: sequence %d, %v", seq, err)
	}
	// The file cannot be written (its folder is a file): the record stays.
	if err := os.WriteFile(filepath.Join(dir, "tsl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := write(seq); err == nil {
		t.Fatal("Write wrote into a folder that is a file")
	}
	if err := os.Remove(filepath.Join(dir, "tsl")); err != nil {
		t.Fatal(err)
	}
	if seq, err = Sequence(ctx, path, 0, log); err != nil || seq != 2 {
		t.Fatalf("after a list recorded but never written: sequence %d (%v), want 2", seq, err)
	}
	if _, err := Sequence(ctx, path, 1, log); !errors.Is(err, ErrSequenceIssued) || !strings.Contains(err.Error(), "leave --sequence out") {
		t.Fatalf("--sequence 1 after 1 was recorded: %v", err)
	}
	if err := write(seq); err != nil {
		t.Fatal(err)
	}
	if seq, err = Sequence(ctx, path, 0, log); err != nil || seq != 3 {
		t.Fatalf("after list 2: sequence %d (%v), want 3", seq, err)
	}
	if seq, err = Sequence(ctx, path, 9, log); err != nil || seq != 9 {
		t.Fatalf("--sequence 9: %d (%v)", seq, err)
	}
}
