package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/metrics"
	"github.com/thiqa/thiqa/store"
)

// newResponders builds the delegated OCSP responders of the issuing CAs
// over the token and a CA opened for them; actor requests their
// certificates.
func newResponders(ctx context.Context, p *platform, set revocation.Settings, actor string) (*revocation.Responders, error) {
	a, err := openAuthority(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	kt, err := hsm.ParseKeyType(set.ResponderKeyType)
	if err != nil {
		return nil, err
	}
	subjects := map[string]revocation.ResponderSubject{}
	for _, c := range p.cfg.CA.Issuers {
		subjects[c.Name] = revocation.ResponderSubject{Organization: c.Organization, Country: c.Country}
	}
	return revocation.NewResponders(revocation.ResponderOptions{
		Dir: p.cfg.Resolve(p.cfg.CA.CertDir), Keys: keyring.Ring{Token: p.token, KeyType: kt, Audit: p.audit, Actor: actor},
		CA: ca.Generations{Authority: a}, Subjects: subjects, Actor: actor,
		Renewals: p.db.OCSPResponderRenewals(), Logger: p.logger.With("service", "revocation"), Audit: p.audit,
	}), nil
}

// initResponders makes sure every issuing CA has a delegated OCSP responder
// key on the token and a valid certificate for it.
func initResponders(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	set, err := p.cfg.Revocation.Settings(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	rp, err := newResponders(ctx, p, set, "thiqa-init")
	if err != nil {
		return err
	}
	for _, c := range p.cfg.CA.Issuers {
		if _, _, err := rp.Ensure(ctx, c.Name, set.OCSP.RenewBefore); err != nil {
			return fmt.Errorf("OCSP responder of %s: %w", c.Name, err)
		}
		certPath, _ := rp.Paths(c.Name)
		fmt.Fprintf(out, "  OCSP responder %-13s %s\n", c.Name, certPath)
	}
	return nil
}

// wireRevocation builds the CRL publisher, the OCSP responder (with its
// delegated responders) and the revocation service over them, mounts their
// routes (CRLs, OCSP, the revocation API behind auth) and runs the CRL
// publisher, the OCSP pre-signer (with responder renewal) and the
// revocation poller in the background. On PostgreSQL the CRL publisher
// shares its CRLs with the other nodes through the database: one node
// signs each, all serve it.
func wireRevocation(ctx context.Context, p *platform, s *serving) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	set, err := p.cfg.Revocation.Settings(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	logger := p.logger.With("service", "revocation")
	h, err := hierarchyConfig(p.cfg)
	if err != nil {
		return err
	}
	parts, err := hierarchy.Find(ctx, h, keyring.CAToken{Token: p.token})
	if err != nil {
		return err
	}
	rp, err := newResponders(ctx, p, set, "thiqa-serve")
	if err != nil {
		return err
	}
	rs := p.db.Revocations()
	var shared crl.SharedStore
	var memory crl.Memory
	if p.db.Dialect() == store.DriverPostgres {
		// The nodes sharing the database serve the CRLs one of them signs
		// (on SQLite one process serves: it signs alone, as always).
		shared = p.db.PublishedCRLs()
	} else {
		// Alone, it records what it publishes, so that after a restart
		// during a backward clock step no CRL is dated before the last.
		memory = p.db.PublishedCRLs()
	}
	pub, err := revocation.NewPublication(ctx, revocation.PublicationOptions{Parts: parts, CRL: set.CRL, OCSP: set.OCSP, Store: rs,
		Issued: p.db.Certificates(nil), Responders: rp, Shared: shared, Memory: memory, Dir: p.cfg.Dir(), Logger: logger, Registerer: p.reg})
	if err != nil {
		return err
	}
	if err := wireRootCRL(ctx, p, s, set.CRL, pub.Publisher); err != nil {
		return err
	}
	svc, err := revocation.New(revocation.Options{Store: rs, Certificates: p.db.Certificates(nil), Audit: p.audit, Logger: logger,
		Responder: pub.Responder, Publisher: pub.Publisher, Status: p.certStatus})
	if err != nil {
		return err
	}
	svc.Register(s.mux, s.handleRaw, p.authn.Require)
	// A responder that cannot sign (revoked and not renewed yet, expired,
	// its key gone) is a warning, not a failure: it is the same on every
	// node, and taking them all out of the load balancer would stop the
	// TSA, signing and the pre-signed OCSP responses too
	// (docs/operations.md, /readyz).
	s.warnings["ocsp"] = metrics.WarningOf(pub.Responder.Ready)
	s.revocations = svc
	s.background = append(append(s.background, pub.Loops()...), func(ctx context.Context) { svc.Poll(ctx, set.PollEvery) })
	// A CRL request waiting for the first publication does not hold the
	// shutdown: the publication ends only once the server has stopped.
	s.stopping = append(s.stopping, pub.Publisher.StopWaiting)
	return nil
}

// runRevoke revokes one certificate in-process: the store commits, the
// audit record is written; a server on the same data learns of it within
// revocation.pollEvery, re-signs its OCSP responses and regenerates CRLs.
func runRevoke(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("revoke", env)
	dir := fs.String("data", "", "data folder (required)")
	serial := fs.String("serial", "", "serial number of the certificate, hex (required)")
	reason := fs.String("reason", "unspecified", "keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serial == "" {
		return withExit(2, errors.New("--serial is required"))
	}
	if _, err := revocation.ParseReason(*reason); err != nil {
		return withExit(2, err)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	release, err := lockForOperator(cfg)
	if err != nil {
		return err
	}
	defer release()
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	log := audit.New(db, logger, nil, audit.Options{})
	defer log.Close()
	svc, err := revocation.New(revocation.Options{Store: db.Revocations(), Certificates: db.Certificates(nil), Audit: log, Logger: logger})
	if err != nil {
		return err
	}
	r, err := svc.Revoke(ctx, operatorName(), *serial, *reason, nil)
	if err != nil {
		return err
	}
	return r.WriteText(env.stdout)
}
