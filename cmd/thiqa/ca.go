package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/signing"
)

// openAuthority opens the issuance service over the configured hierarchy
// and the store (hierarchy.OpenAuthority: every issuer's HSM key must match
// its certificate).
func openAuthority(ctx context.Context, p *platform, reg prometheus.Registerer) (*ca.Authority, error) {
	cfg := p.cfg
	h, err := hierarchyConfig(cfg)
	if err != nil {
		return nil, err
	}
	rset, err := cfg.Revocation.Settings(cfg.PublicBaseURL)
	if err != nil {
		return nil, err
	}
	partitions := rset.CRL.Partitions // each certificate names its CRL partition
	// With hsm.verifyAfterSign the HSM layer checks every signature with
	// the key's public half; the issuers then do not check their ECDSA
	// signatures a second time (RSA ones they always check).
	a, err := hierarchy.OpenAuthority(ctx, h, keyring.CAToken{Token: p.token},
		ca.IssuerOptions{SignerVerifiesECDSA: cfg.HSM.VerifyAfterSign, CRLPartitions: partitions}, ca.AuthorityConfig{
			Store: p.db.Certificates(func(string) int { return partitions }), Auditor: p.audit,
			Logger: p.logger.With("service", "ca"), Metrics: reg, Revoked: p.revokedCAs,
		})
	if err != nil {
		return nil, err
	}
	if err := applyImportedRootCRL(ctx, p, a); err != nil {
		// Fail closed: until a root CRL is applied (a server's next reload,
		// wireRootCRL) the CAs the root certified issue nothing; `thiqa
		// issue` is refused. OCSP, CRLs and revocation go on. Unless a CRL
		// was applied before in this process: the state is known.
		p.revokedCAs.RootCRLUnknown(err, true)
		p.logger.Error("the imported root CRL could not be checked for revoked issuing CAs: issuance from the CAs the root certified is refused until it can", "err", err)
	}
	return a, nil
}

// applyImportedRootCRL has a refuse to issue from the issuing CAs that the
// root CRL imported into the store revokes (ca.Authority.ApplyRootCRL), so
// that an in-process verb (thiqa issue) refuses as the servers do; the
// servers apply each CRL they reload too (wireRootCRL). Nothing to apply
// with the root key online, or before a root CRL is imported.
func applyImportedRootCRL(ctx context.Context, p *platform, a *ca.Authority) error {
	if !p.cfg.CA.Root.Offline {
		return nil
	}
	c, err := p.db.ImportedCRLs().ImportedCRL(ctx, p.cfg.CA.Root.Name)
	if errors.Is(err, crl.ErrNoImported) {
		// Known: nothing revoked. Lifts a failed read of an earlier open
		// (the TSA unit's certifier opens an authority at its first
		// renewal, and again when the generation it holds is revoked).
		p.revokedCAs.RootCRLNone()
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the imported root CRL: %w", err)
	}
	rl, _, err := crl.ParseCRL(c.DER)
	if err != nil {
		return fmt.Errorf("the imported root CRL: %w", err)
	}
	return a.ApplyRootCRL(ctx, rl)
}

// wireCA serves the CA: issuance and look-up for registration officers,
// and the CA certificates for everyone.
func wireCA(ctx context.Context, p *platform, s *serving) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	a, err := openAuthority(ctx, p, p.reg)
	if err != nil {
		return err
	}
	kt, err := hsm.ParseKeyType(p.cfg.CA.SubjectKeyTypeOrDefault())
	if err != nil {
		return err
	}
	keys := &tokenKeys{Token: p.token, KeyType: kt, Audit: p.audit}
	api := ca.NewAPI(a, ca.HandlerOptions{
		KeyGenerator: keys,
		Logger:       p.logger.With("service", "ca"),
		Trail:        p.db,
		Search:       p.db.Certificates(nil),
		// The signing service is wired after the CA: read it at call time.
		// With signing.pinPolicy.firstPINActivation a citizen's new
		// credential gets the activation code of its first PIN.
		Issued: func(ctx context.Context, got *ca.Issued) (ca.Registration, error) {
			if s.signing == nil {
				return ca.Registration{}, nil
			}
			a, err := s.signing.RegisterIssuedBy(ctx, signing.IssuedCertificate{CredentialID: got.CredentialID, CA: got.CA,
				Profile: got.Profile, Serial: got.Serial, DER: got.Certificate.Raw})
			return ca.Registration{ActivationCode: a.Code, ActivationExpires: a.ExpiresAt}, err
		},
		FirstPINActivation: p.cfg.Signing.Enabled(p.cfg.CA) && p.cfg.Signing.PINPolicy.FirstPINActivation,
	})
	api.Register(s.mux, p.authn.Require)
	s.ca = &wiredCA{authority: a, api: api, keys: keys}
	return nil
}

// readSubjectFile reads --subject-file: a JSON object of subject fields.
func readSubjectFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --subject-file: %w", err)
	}
	var subject map[string]string
	if err := json.Unmarshal(raw, &subject); err != nil {
		return nil, fmt.Errorf("--subject-file: want a JSON object of strings: %w", err)
	}
	return subject, nil
}

// openOperatorCA opens data folder dir for a CA operation in process at
// the server's machine: its platform (closed by the returned function)
// and its authority.
func openOperatorCA(ctx context.Context, env *cliEnv, dir string) (*platform, *ca.Authority, func(), error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cfg.CA.Enabled() {
		return nil, nil, nil, errors.New("this data folder has no CA configured (ca section of thiqa.yaml)")
	}
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := openAuthority(ctx, p, nil)
	if err != nil {
		closePlatform()
		return nil, nil, nil, err
	}
	return p, a, closePlatform, nil
}

// runIssue issues one certificate in-process: `thiqa issue`.
func runIssue(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("issue", env)
	dir := fs.String("data", "", "data folder (required)")
	profile := fs.String("profile", "", "certificate profile, e.g. citizen-signing (required)")
	csrFile := fs.String("csr", "", "PKCS#10 request, PEM or DER (required)")
	subjectFile := fs.String("subject-file", "", "JSON object with the subject fields (required)")
	caName := fs.String("ca", "", "issuing CA when the profile allows several")
	requestID := fs.String("request-id", "", "idempotency key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *profile == "" || *csrFile == "" || *subjectFile == "" {
		return withExit(2, errors.New("--profile, --csr and --subject-file are required"))
	}
	csr, err := os.ReadFile(*csrFile)
	if err != nil {
		return fmt.Errorf("reading --csr: %w", err)
	}
	subject, err := readSubjectFile(*subjectFile)
	if err != nil {
		return err
	}
	_, a, closePlatform, err := openOperatorCA(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closePlatform()
	got, err := a.Issue(ctx, ca.Request{Profile: *profile, CA: *caName, Subject: subject, CSR: csr, RequestID: *requestID, RequestedBy: operatorName()})
	if err != nil {
		return err
	}
	return pem.Encode(env.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: got.Certificate.Raw})
}
