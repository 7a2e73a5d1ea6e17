package main

// Wiring of trusted lists: `thiqa init` makes the list signer's key and
// certificate, `thiqa serve` publishes this deployment's list at
// GET /tsl.xml and keeps the verifier's configured lists fresh.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/tsl/build"
	"github.com/thiqa/thiqa/verify"
)

// initTSLSigner makes sure the trusted-list signer key (RSA 3072: what
// every XML-signature implementation verifies) is on the token and has its
// certificate in the data folder, self-signed by that key
// (build.EnsureSignerCertificate). What exists is kept.
func initTSLSigner(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	tc := p.cfg.ResolvedTSL()
	key, err := ensureServiceKey(ctx, p, tc.SignerKey, hsm.RSA3072)
	if err != nil {
		return err
	}
	var root *x509.Certificate
	if roots, err := verify.ReadPEMFile(caCertPath(p.cfg, p.cfg.CA.Root.Name)); err == nil {
		root = roots[0]
	}
	if err := build.EnsureSignerCertificate(tc.SignerCertificate, key, key.URI(), tc.Operator, root, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(out, "  trusted-list signer  %s  %s\n", key.URI(), tc.SignerCertificate)
	return nil
}

// tslSigner returns the trusted-list signer key and its certificate.
func tslSigner(ctx context.Context, p *platform) (*hsm.Signer, *x509.Certificate, error) {
	tc := p.cfg.ResolvedTSL()
	key, err := findServiceKey(ctx, p, "tsl.signerKey", tc.SignerKey, "trusted-list signer key", "")
	if err != nil {
		return nil, nil, err
	}
	cert, err := build.ReadSignerCertificate(tc.SignerCertificate, key.Public())
	if errors.Is(err, build.ErrOtherKey) {
		return nil, nil, fmt.Errorf("%s does not certify the key %s", tc.SignerCertificate, tc.SignerKey)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trusted-list signer certificate (run `thiqa init --data %s`): %w", p.cfg.Dir(), err)
	}
	return key, cert, nil
}

// wireTSL serves this deployment's trusted list at GET /tsl.xml (the file
// `thiqa tsl build` wrote; read again when it changes).
func wireTSL(_ context.Context, p *platform, s *serving) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	path, log := p.cfg.ResolvedTSL().File, p.logger.With("service", "tsl")
	s.mux.Handle("GET /tsl.xml", build.NewPublished(path, log))
	if _, err := os.Stat(path); err != nil {
		log.Warn("no trusted list to publish yet: run `thiqa tsl build`", "file", path)
	}
	return nil
}

// serveTrustedLists loads verify.trustedLists for `thiqa serve` and reloads
// them every verify.trustedListRefresh in the background
// (verify.Config.LiveTrustedLists). Nil when none is configured.
func serveTrustedLists(ctx context.Context, p *platform, s *serving, logger *slog.Logger) verify.TrustedLists {
	lists, refresh := p.cfg.Verify.LiveTrustedLists(ctx, p.cfg.Resolve, logger)
	if refresh != nil {
		s.background = append(s.background, refresh)
	}
	return lists
}
