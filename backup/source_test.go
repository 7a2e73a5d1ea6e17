package backup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// source is a data folder to back up: thiqa.yaml and the certificate of a
// fresh root in ca/root.pem, a database of one dialect that records the
// deployment, and the audit log over it.
type source struct {
	dir            string
	rootKey, cpKey *ecdsa.PrivateKey
	root           *x509.Certificate
	rootSHA        string
	d              storetest.Dialect
	cfg            store.Config
	db             *store.DB
	log            *audit.Log
}

// newSource makes a source over a fresh database of d.
func newSource(t *testing.T, d storetest.Dialect) *source {
	t.Helper()
	s := &source{dir: t.TempDir(), rootKey: newKey(t), cpKey: newKey(t), d: d}
	s.root = selfSigned(t, s.rootKey, "Test Root")
	sum := sha256.Sum256(s.root.Raw)
	s.rootSHA = hex.EncodeToString(sum[:])
	writeTestFile(t, filepath.Join(s.dir, "thiqa.yaml"), "listen: x\n")
	writeTestFile(t, filepath.Join(s.dir, "ca", "root.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.root.Raw})))
	s.cfg = d.NewConfig(t)
	s.db = storetest.Open(t, s.cfg)
	s.log = audit.New(s.db, slog.New(slog.DiscardHandler), nil, audit.Options{})
	t.Cleanup(func() { s.log.Close() })
	if _, _, err := s.db.RecordDeployment(context.Background(), store.Deployment{RootSHA256: s.rootSHA}); err != nil {
		t.Fatal(err)
	}
	return s
}

// options are the options of a backup of s to out.
func (s *source) options(out string) backup.Options {
	return backup.Options{
		Data: s.dir, Out: out, CheckpointFile: filepath.Join(s.dir, "audit", "checkpoints.jsonl"),
		Driver: s.d.Name, Database: testDB{s.db, s.cfg.DSN}, Signer: s.cpKey, Audit: s.log, Actor: "test",
		Deployment: backup.Deployment{RootSHA256: s.rootSHA, RootSubject: s.root.Subject.String()}, Token: "test",
	}
}

// backUp writes a backup of s and returns its path.
func (s *source) backUp(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "backup.tar.gz")
	if _, err := backup.Create(context.Background(), s.options(out)); err != nil {
		t.Fatal(err)
	}
	return out
}
