package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// The deployment identity (hierarchy.Identity) ties a data folder and a
// store together; init records it, serve checks it.

// readFolderIdentity reads the deployment identity of cfg's data folder.
func readFolderIdentity(cfg *config.Config) (*hierarchy.Identity, error) {
	return hierarchy.ReadIdentity(caCertPath(cfg, cfg.CA.Root.Name))
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
	have, written, err := p.db.RecordDeployment(ctx, store.Deployment{RootSHA256: f.RootSHA256})
	if err != nil {
		return err
	}
	if have.RootSHA256 != f.RootSHA256 {
		return f.Mismatch(have.RootSHA256, have.CreatedAt)
	}
	if written {
		if _, err := p.audit.Append(ctx, audit.Entry{Actor: "thiqa-init", Action: "deployment.record", Object: f.RootSHA256,
			Outcome: audit.OutcomeSuccess, Details: map[string]any{"root": f.Root.Subject.String()}}); err != nil {
			return fmt.Errorf("writing audit record: %w", err)
		}
	}
	fmt.Fprintf(out, "  deployment  root CA SHA-256 %s\n", f.RootSHA256)
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
		if have.RootSHA256 != f.RootSHA256 {
			return f.Mismatch(have.RootSHA256, have.CreatedAt)
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
			hierarchy.ErrStoreEmpty, p.cfg.Dir())
	}
	if _, _, err := p.db.RecordDeployment(ctx, store.Deployment{RootSHA256: f.RootSHA256}); err != nil {
		return err
	}
	p.logger.Info("recorded the deployment identity in a store made before identities existed", "rootSHA256", f.RootSHA256)
	return nil
}
