package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/store"
)

// newResponders builds the delegated OCSP responders of the issuing CAs
// over the token and a CA opened for them; actor requests their
// certificates.
func newResponders(ctx context.Context, p *platform, set config.RevocationSettings, actor string) (*revocation.Responders, error) {
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
		for n := 2; ; n++ { // a later generation's responder names the same organisation
			if _, ok := a.CACertificate(hierarchy.GenerationName(c.Name, n)); !ok {
				break
			}
			subjects[hierarchy.GenerationName(c.Name, n)] = subjects[c.Name]
		}
	}
	return revocation.NewResponders(revocation.ResponderOptions{
		Dir: p.cfg.Resolve(p.cfg.CA.CertDir), Keys: keyring.Ring{Token: p.token, KeyType: kt, Audit: p.audit},
		CA: ca.Generations{Authority: a}, Subjects: subjects, Actor: actor,
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
// revocation poller in the background.
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
	parts, err := hierarchy.Find(ctx, h, caToken{token: p.token})
	if err != nil {
		return err
	}
	rp, err := newResponders(ctx, p, set, "thiqa-serve")
	if err != nil {
		return err
	}
	rs := p.db.Revocations()
	var issuers []ocsp.Issuer
	var gens []*crl.Generator
	current := hierarchy.CurrentGenerations(parts)
	for i, c := range parts {
		if c.Key == nil || c.Cert == nil {
			if i == 0 {
				continue // the root key is kept offline: no root CRL from here
			}
			if hierarchy.KeyDestroyed(c, current) {
				logger.Warn("an older CA generation has no key on the token: no CRLs or OCSP answers from it", "ca", c.Conf.Name)
				continue
			}
			return fmt.Errorf("CA %s is not initialised: run `thiqa init --data %s`", c.Conf.Name, p.cfg.Dir())
		}
		if i > 0 {
			if done, err := hierarchy.Retired(ctx, p.db.Certificates(nil), c, current, time.Now()); err != nil {
				return err
			} else if done {
				logger.Info("CA generation retired: its certificates have all expired; no more CRLs or OCSP answers from it", "ca", c.Conf.Name)
				continue
			}
		}
		cs, err := crlSettingsOf(ctx, set.CRL, rs, c.Conf.Name, i == 0)
		if err != nil {
			return err
		}
		g, err := crl.NewGenerator(cs, crl.Issuer{Name: c.Conf.Name, Cert: c.Cert, Signer: c.Key, CACerts: i == 0}, rs, rs)
		if err != nil {
			return err
		}
		gens = append(gens, g)
		if i == 0 {
			continue
		}
		rc, _, err := rp.Ensure(ctx, c.Conf.Name, 0)
		if err != nil {
			return fmt.Errorf("OCSP responder of %s: %w", c.Conf.Name, err)
		}
		issuers = append(issuers, ocsp.Issuer{Name: c.Conf.Name, Cert: c.Cert, Responder: rc})
	}
	responder, err := ocsp.New(set.OCSP, issuers, rs, ocsp.NewCache(set.OCSP.CacheEntries), logger, p.reg)
	if err != nil {
		return err
	}
	publisher, err := crl.NewPublisher(set.CRL, logger, p.reg, gens...)
	if err != nil {
		return err
	}
	if err := wireRootCRL(ctx, p, s, set.CRL, publisher); err != nil {
		return err
	}
	svc, err := revocation.New(revocation.Options{Store: rs, Certificates: p.db.Certificates(nil), Audit: p.audit, Logger: logger,
		Responder: responder, Publisher: publisher, Status: p.certStatus})
	if err != nil {
		return err
	}
	svc.Register(s.mux, s.handleRaw, p.authn.Require)
	s.revocations = svc
	s.background = append(s.background,
		func(ctx context.Context) { _ = publisher.Run(ctx) },
		func(ctx context.Context) { _ = ocsp.NewPresigner(responder, rp).Run(ctx) },
		func(ctx context.Context) { svc.Poll(ctx, set.PollEvery) },
	)
	return nil
}

// crlSettingsOf returns the CRL settings of one CA (crl.Settings.ForIssuer)
// with the highest partition its certificates name.
func crlSettingsOf(ctx context.Context, set crl.Settings, rs *store.Revocations, ca string, root bool) (crl.Settings, error) {
	if root {
		return set.ForIssuer(true, 0), nil
	}
	used, err := rs.HighestPartition(ctx, ca)
	if err != nil {
		return crl.Settings{}, err
	}
	return set.ForIssuer(false, used), nil
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
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	log := newAuditLog(db, logger, nil)
	defer log.Close()
	svc, err := revocation.New(revocation.Options{Store: db.Revocations(), Certificates: db.Certificates(nil), Audit: log, Logger: logger})
	if err != nil {
		return err
	}
	r, err := svc.Revoke(ctx, operatorName(), *serial, *reason, nil)
	if err != nil {
		return err
	}
	if r.AlreadyRevoked {
		fmt.Fprintf(env.stdout, "%s was already revoked (CA %s, %s) at %s; its revocation stands\n", r.Serial, r.CA, revocation.Reason(r.Reason), r.RevokedAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(env.stdout, "revoked %s (CA %s, %s) at %s\n", r.Serial, r.CA, revocation.Reason(r.Reason), r.RevokedAt.Format(time.RFC3339))
	}
	if r.KeyBlocked {
		fmt.Fprintf(env.stdout, "key blocked: it can never be certified again\n")
	}
	for _, a := range r.AlsoRevoked {
		fmt.Fprintf(env.stdout, "also revoked %s (CA %s, same key, keyCompromise)\n", a.Serial, a.CA)
	}
	return nil
}

// oidOrganizationIdentifier is the organizationIdentifier attribute
// (2.5.4.97): the signing service names an agency's own credentials by it.
// It leaves with the signing service; ca/revocation has its own.
var oidOrganizationIdentifier = []int{2, 5, 4, 97}
