package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/store"
)

// wireRootCRL publishes the root CRL and says where the root key is.
//
// With the root offline (ca.root.offline) the servers publish at
// /crl/root.crl the CRL the key ceremony signed and `thiqa ca crl import`
// stored, until its nextUpdate; /readyz fails without one and warns (still
// 200, entry "rootCRL") 14 days before it lapses. With the root key on the
// online token (the development default of `make run`) the CRL publisher
// generates it, and the server warns that this is for development only.
// Either way thiqa_root_crl_next_update_seconds is the nextUpdate of the
// root CRL served and thiqa_root_key_online says where the key is.
//
// An issuing CA generation whose certificate the imported root CRL lists
// issues nothing more (ca.Authority.ApplyRootCRL, at each load): its
// requests are answered 409 issuing-ca-revoked, thiqa_issuing_ca_revoked
// says 1 and /readyz names it under "issuingCARevoked" without failing.
// The check fails closed: while a loaded root CRL cannot be applied, the
// stored one is damaged or does not verify, or the node could not read it
// at start (openAuthority), every CA the root
// certified is refused the same way (ca.IssuerStateUnknownError) and
// /readyz says why; each reload (30 s) applies the CRL again, and one that
// finds none imported lifts a failed read. The CRL itself is still served.
func wireRootCRL(ctx context.Context, p *platform, s *serving, set crl.Settings, publisher *crl.Publisher) error {
	var nextUpdate func() float64
	if !p.cfg.CA.Root.Offline {
		p.logger.Warn("the root CA key is on the online token: development only. No national PKI and no ETSI EN 319 411-1 audit accepts an online root; "+
			"keep it offline in a key ceremony (docs/ceremony.md, thiqa init --root-cert); a deployment already in service takes this root offline with thiqa ca root adopt and thiqa ca root retire-online (docs/ceremony.md, Taking an existing online root offline)", "key", p.cfg.CA.Root.Key)
		nextUpdate = func() float64 { return publisher.NextUpdateOf(crl.FileName("root", 0)) }
	} else {
		root, err := caCertificate(p.cfg, p.cfg.CA.Root.Name)
		if err != nil {
			return fmt.Errorf("the root certificate: %w", err)
		}
		o := crl.ImportedOptions{MaxAge: set.MaxAge, Logger: p.logger.With("service", "revocation")}
		if p.db.Dialect() == store.DriverPostgres {
			o.SwitchAfter = rootCRLSwitch // several nodes: they switch together
		}
		if s.ca != nil {
			// An issuing CA the root CRL revokes issues nothing more: from
			// the CRL's load, not its switch time (at once).
			a := s.ca.authority
			// Fail closed: a CRL that cannot be applied leaves the state
			// unknown, issuance from the CAs the root certified is refused,
			// and the next reload applies it again. No CRL imported: the
			// state is known (nothing revoked).
			o.OnLoad = func(ctx context.Context, rl *x509.RevocationList) error {
				if err := a.ApplyRootCRL(ctx, rl); err != nil {
					a.Revoked().RootCRLUnknown(err, false)
					return err
				}
				return nil
			}
			o.OnNone = func(context.Context) { a.Revoked().RootCRLNone() }
			// A stored CRL that is damaged or does not verify may revoke
			// anything: unknown, as when thiqa issue reads it (openAuthority).
			o.OnBad = func(_ context.Context, err error) { a.Revoked().RootCRLUnknown(err, false) }
		}
		imp := crl.NewImported(p.cfg.CA.Root.Name, root, p.db.ImportedCRLs(), o)
		if err := imp.Load(ctx); errors.Is(err, crl.ErrNoImported) {
			p.logger.Warn("no root CRL imported yet: /crl/root.crl answers 404 and /readyz fails until one is (thiqa ca crl import)")
		} else if errors.Is(err, crl.ErrNotApplied) {
			p.logger.Error("the imported root CRL could not be checked for revoked issuing CAs (it is served): issuance from the CAs the root certified is refused until a reload applies it", "err", err)
		} else if err != nil {
			p.logger.Error("the imported root CRL cannot be published", "err", err)
		}
		s.mux.Handle("GET /crl/"+p.cfg.CA.Root.Name+".crl", imp)
		s.ready["rootCRL"] = imp.Ready
		s.warnings["rootCRL"] = imp.Warning
		s.background = append(s.background, func(ctx context.Context) { imp.Run(ctx, rootCRLReload) })
		nextUpdate = imp.NextUpdate
	}
	if s.ca != nil {
		// Named in /readyz without failing it: OCSP and CRLs go on.
		s.warnings["issuingCARevoked"] = s.ca.authority.RevokedWarning
	}
	return crl.RegisterRootMetrics(p.reg, !p.cfg.CA.Root.Offline, nextUpdate)
}
