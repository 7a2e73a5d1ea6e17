package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// The deployment identity ties a data folder and a store together: the
// SHA-256 of the root CA certificate, which `thiqa init` records in the
// store (table deployment) and `thiqa serve` compares with the folder's
// ca/root.pem before it serves anything. A cluster node whose folder holds
// another deployment's root, or that was given another deployment's (or an
// empty) database, refuses to start: it would otherwise issue certificates
// and time-stamps under one root while recording them in another's store.

// errDeploymentMismatch is returned (wrapped) when the data folder's root
// CA is not the root of the deployment the store belongs to.
var errDeploymentMismatch = errors.New("the data folder and the store belong to different deployments")

// errStoreEmpty is returned (wrapped) by `thiqa serve` when the store
// holds no deployment at all: an empty database, most likely the wrong one.
var errStoreEmpty = errors.New("the store is empty")

// folderIdentity is a data folder's deployment identity, read from its
// root CA certificate.
type folderIdentity struct {
	root *x509.Certificate
	id   store.Deployment
	path string
}

// rootFingerprint returns the SHA-256 of a certificate's DER, hex.
func rootFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// readFolderIdentity reads the root CA certificate of cfg's data folder.
func readFolderIdentity(cfg *config.Config) (*folderIdentity, error) {
	path := caCertPath(cfg, cfg.CA.Root.Name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the root CA certificate: %w", err)
	}
	c, err := parseCertPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate %s: %w", path, err)
	}
	return &folderIdentity{root: c, path: path, id: store.Deployment{RootSHA256: rootFingerprint(c)}}, nil
}

// mismatchError describes a data folder and a store of two deployments.
func mismatchError(f *folderIdentity, have store.Deployment) error {
	return fmt.Errorf("%w: the folder's root CA %s (%s) has SHA-256 %s, but the store was initialised for the root with SHA-256 %s on %s: check store.dsn (or store.dsnEnv) and the data folder; nothing was changed",
		errDeploymentMismatch, f.path, f.root.Subject.CommonName, f.id.RootSHA256, have.RootSHA256, have.CreatedAt.Format(time.RFC3339))
}

// initDeployment records the data folder's deployment identity in the
// store (`thiqa init`, after the CA hierarchy exists), or checks it when
// the store has one.
func initDeployment(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	f, err := readFolderIdentity(p.cfg)
	if err != nil {
		return err
	}
	have, written, err := p.db.RecordDeployment(ctx, f.id)
	if err != nil {
		return err
	}
	if have.RootSHA256 != f.id.RootSHA256 {
		return mismatchError(f, have)
	}
	if written {
		if _, err := p.audit.Append(ctx, audit.Entry{Actor: "thiqa-init", Action: "deployment.record", Object: f.id.RootSHA256,
			Outcome: audit.OutcomeSuccess, Details: map[string]any{"root": f.root.Subject.String()}}); err != nil {
			return fmt.Errorf("writing audit record: %w", err)
		}
	}
	fmt.Fprintf(out, "  deployment  root CA SHA-256 %s\n", f.id.RootSHA256)
	return nil
}

// wireDeployment runs first in `thiqa serve`: it holds a shared lock on the
// data folder while serving (so that `thiqa restore` refuses a live folder;
// any number of servers may share a folder) and refuses a store of another
// deployment, or an empty one. A store made before identities existed
// (audit records, no identity) adopts the folder's.
func wireDeployment(ctx context.Context, p *platform, s *serving) error {
	release, err := backup.LockFolder(p.cfg.Dir(), false)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, release)
	if !p.cfg.CA.Enabled() {
		return nil
	}
	f, err := readFolderIdentity(p.cfg)
	if err != nil {
		return fmt.Errorf("%w (run thiqa init --data %s)", err, p.cfg.Dir())
	}
	have, err := p.db.Deployment(ctx)
	switch {
	case err == nil:
		if have.RootSHA256 != f.id.RootSHA256 {
			return mismatchError(f, have)
		}
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	head, err := p.db.AuditHead(ctx)
	if err != nil {
		return err
	}
	if head.Seq == 0 {
		return fmt.Errorf("%w: no deployment, no audit record: check store.dsn (or store.dsnEnv), or run thiqa init --data %s for a new deployment",
			errStoreEmpty, p.cfg.Dir())
	}
	if _, _, err := p.db.RecordDeployment(ctx, f.id); err != nil {
		return err
	}
	p.logger.Info("recorded the deployment identity in a store made before identities existed", "rootSHA256", f.id.RootSHA256)
	return nil
}
