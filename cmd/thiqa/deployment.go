package main

import (
	"context"
	"fmt"
	"io"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
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
	if err := f.Record(ctx, p.db, p.audit, "thiqa-init"); err != nil {
		return err
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
	adopted, err := f.Check(ctx, p.db, p.cfg.Dir())
	if adopted {
		p.logger.Info("recorded the deployment identity in a store made before identities existed", "rootSHA256", f.RootSHA256)
	}
	return err
}
