package main

import (
	"context"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/signing"
)

// renewalSweepEvery is how often `thiqa serve` completes renewals a crash
// interrupted and refreshes thiqa_certificates_expiring.
const renewalSweepEvery = time.Minute

// wireRenewal serves POST /api/v1/certificates/{serial}/renew and
// GET /api/v1/certificates?expiringWithin= over the CA, the revocation
// service (superseded) and the signing service (credentials follow their
// certificates), which the earlier wirings left in s.
func wireRenewal(_ context.Context, p *platform, s *serving) error {
	if s.ca == nil {
		return nil
	}
	cfg := ca.RenewerConfig{
		Authority: s.ca.authority, Store: p.db.Certificates(nil), Keys: s.ca.keys,
		Logger: p.logger.With("service", "renewal"), Metrics: p.reg,
	}
	if s.signing != nil {
		cfg.Credentials = credentialSwitch{s: s.signing}
	}
	if s.revocations != nil && !p.cfg.CA.Renewal.KeepSuperseded {
		cfg.Superseder = s.revocations
	}
	rn, err := ca.NewRenewer(cfg)
	if err != nil {
		return err
	}
	rn.Register(s.mux, p.authn.Require, s.ca.api)
	s.renewer = rn
	s.background = append(s.background, func(ctx context.Context) { rn.Run(ctx, renewalSweepEvery) })
	return nil
}

// credentialSwitch moves a signing credential to its new certificate
// (ca.CredentialSwitcher over the signing service).
type credentialSwitch struct{ s *signing.Service }

func (c credentialSwitch) SwitchCredential(ctx context.Context, sw ca.CredentialSwitch) error {
	return c.s.SwitchCredential(ctx, signing.IssuedCertificate{CredentialID: sw.CredentialID, CA: sw.CA, Profile: sw.Profile,
		Serial: sw.Serial, DER: sw.DER, KeyLabel: sw.KeyLabel}, sw.Replaced)
}
