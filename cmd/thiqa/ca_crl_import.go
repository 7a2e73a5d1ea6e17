package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/store"
)

// rootCRLReload is how often `thiqa serve` looks for a newly imported root CRL.
const rootCRLReload = 30 * time.Second

// rootCRLSwitch is how long after its import the nodes of a cluster
// (PostgreSQL) serve a new root CRL: every node has reloaded by then, so
// they switch together (crl.ImportedOptions.SwitchAfter).
const rootCRLSwitch = rootCRLReload + 5*time.Second

// caCRLImport is `thiqa ca crl import`: it hands the root CRL the key
// ceremony signed (or an existing national root's CRL) to the online
// servers, which publish it at /crl/root.crl until its nextUpdate. It
// refuses a CRL that the configured root did not sign, one not valid yet,
// one already lapsed, and one older than the CRL published; a refusal
// changes nothing. Running servers pick it up within rootCRLReload.
func caCRLImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca crl import", env)
	dir := fs.String("data", "", "data folder (required)")
	crlFile := fs.String("crl", "", "the root CRL, DER or PEM (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *crlFile == "" {
		return withExit(2, errors.New("--data and --crl are required"))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if !cfg.CA.Enabled() {
		return errors.New("this data folder runs no CA (ca section of thiqa.yaml)")
	}
	if !cfg.CA.Root.Offline {
		return errors.New("the root key of this data folder is on its token (development): thiqa serve generates the root CRL itself; importing one is for an offline root (to take this root offline: thiqa ca root retire-online --data D --crl F, after thiqa ca root adopt)")
	}
	raw, err := os.ReadFile(*crlFile)
	if err != nil {
		return fmt.Errorf("reading --crl: %w", err)
	}
	root, err := caCertificate(cfg, cfg.CA.Root.Name)
	if err != nil {
		return fmt.Errorf("the configured root certificate: %w", err)
	}
	now := time.Now()
	c, err := crl.CheckImported(cfg.CA.Root.Name, raw, root, now)
	if err != nil {
		return crl.Refused(*crlFile, err)
	}
	p, closeStore, err := openOperatorStore(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	out := env.stdout
	switch err := crl.Import(ctx, p.db.ImportedCRLs(), p.audit, c, *crlFile, operatorName(), now); {
	case errors.Is(err, crl.ErrAlreadyImported):
		fmt.Fprintf(out, "root CRL number %s imported already (SHA-256 fingerprint %s): nothing changed\n", c.NumberString(), ca.Fingerprint(c.DER))
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "root CRL number %s imported: %d revoked issuing CA(s), valid until %s\n", c.NumberString(), c.Entries, c.NextUpdate.Format(time.RFC3339))
	fmt.Fprintf(out, "  SHA-256 fingerprint: %s\n", ca.Fingerprint(c.DER))
	warnRevokedIssuingCAs(env.stderr, cfg, c.DER)
	within := "within " + rootCRLReload.String()
	if cfg.Store.Driver == store.DriverPostgres {
		within = "all at once, " + rootCRLSwitch.String() + " after this import"
	}
	fmt.Fprintf(out, "thiqa serve publishes it at %s/crl/root.crl (running servers %s); import the next one before %s (/readyz warns from then on)\n",
		cfg.PublicBaseURL, within, c.NextUpdate.Add(-14*24*time.Hour).Format(time.DateOnly))
	return nil
}

// warnRevokedIssuingCAs says on w (stderr, as every warning of thiqa's
// commands) which installed issuing CA generations the imported root CRL
// revokes (hierarchy.RevokedGenerations): the servers stop issuing from
// them when they read it (ca.Authority.ApplyRootCRL), until rolled over.
func warnRevokedIssuingCAs(out io.Writer, cfg *config.Config, der []byte) {
	h, err := hierarchyConfig(cfg)
	if err != nil {
		return
	}
	rl, _, err := crl.ParseCRL(der)
	if err != nil {
		return
	}
	for _, g := range hierarchy.RevokedGenerations(h, rl) {
		fmt.Fprintf(out, "warning: it revokes issuing CA %s (%s, serial %s): the servers stop issuing from it within %s (409 issuing-ca-revoked) until it is rolled over (docs/operations.md, Key compromise of an issuing CA)\n",
			g.Generation, g.Path, g.Serial, rootCRLReload)
	}
}
