package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
)

// caCertPath is where `thiqa init` writes a CA's certificate (PEM).
func caCertPath(cfg *config.Config, name string) string {
	return filepath.Join(cfg.Resolve(cfg.CA.CertDir), name+".pem")
}

// caPart is one CA of the hierarchy as found on the token and on disk.
type caPart struct {
	conf  config.CAKeyConfig
	uri   string
	label string
	key   *hsm.Signer // nil when the token has no such key
	cert  *x509.Certificate
	path  string

	// ca and gen name the CA and generation of a later generation of an
	// issuing CA (cagenerations.go), whose conf.Name is its issuer name.
	ca  string
	gen int
}

// caName is the name of the CA the part is a generation of.
func (c *caPart) caName() string {
	if c.ca != "" {
		return c.ca
	}
	return c.conf.Name
}

// generation is the part's generation, 1 for the configured key.
func (c *caPart) generation() int { return max(c.gen, 1) }

// findHierarchy looks up every configured CA's key on the token and its
// certificate in the data folder, without creating anything: the root
// first (without a key when it is offline), then the issuing CAs, then the
// later generations of rolled-over issuing CAs that have their certificate.
func findHierarchy(ctx context.Context, cfg *config.Config, tok *hsm.Token) ([]*caPart, error) {
	var parts []*caPart
	for _, c := range append([]config.CAKeyConfig{cfg.CA.Root}, cfg.CA.Issuers...) {
		p := &caPart{conf: c, uri: c.Key, path: caCertPath(cfg, c.Name)}
		if c.Key != "" { // an offline root has no key here
			label, err := keyLabel(cfg, c.Key)
			if err != nil {
				return nil, fmt.Errorf("CA %s: %w", c.Name, err)
			}
			p.label = label
			switch k, err := tok.FindKey(ctx, label); {
			case err == nil:
				p.key = k
			case !errors.Is(err, hsm.ErrKeyNotFound):
				return nil, fmt.Errorf("CA %s: finding key %q: %w", c.Name, label, err)
			}
		}
		raw, err := os.ReadFile(p.path)
		switch {
		case err == nil:
			if p.cert, err = parseCertPEM(raw); err != nil {
				return nil, fmt.Errorf("CA %s: %s: %w", c.Name, p.path, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("CA %s: reading %s: %w", c.Name, p.path, err)
		}
		if pub, ok := publicOf(p.key); ok && p.cert != nil && !pub.Equal(p.cert.PublicKey) {
			return nil, fmt.Errorf("CA %s: key %s does not match the certificate in %s", c.Name, c.Key, p.path)
		}
		parts = append(parts, p)
	}
	later, err := laterGenerationParts(ctx, cfg, tok)
	if err != nil {
		return nil, err
	}
	return append(parts, later...), nil
}

// publicOf returns the key's public half, false when there is no key.
func publicOf(k *hsm.Signer) (interface{ Equal(crypto.PublicKey) bool }, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	return pub, ok
}

// parseCertPEM reads exactly one PEM certificate.
func parseCertPEM(raw []byte) (*x509.Certificate, error) {
	blk, rest := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("want exactly one PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// initCA creates the CA hierarchy on the token: the root key and its
// self-signed certificate, then each issuing CA's key and certificate. What
// exists is kept. A key without its certificate, or a certificate without
// its key, stops init with nothing created or replaced.
func initCA(ctx context.Context, p *platform, out io.Writer) error {
	cfg := p.cfg
	if !cfg.CA.Enabled() {
		return nil
	}
	if cfg.CA.Root.Offline {
		return initIssuingCSRs(ctx, p, out)
	}
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return err
	}
	parts, err := findHierarchy(ctx, cfg, p.token)
	if err != nil {
		return err
	}
	parts = parts[:1+len(cfg.CA.Issuers)] // later generations come from thiqa ca rollover
	root := parts[0]
	for _, c := range parts {
		switch {
		case c.key != nil && c.cert == nil:
			return fmt.Errorf("CA %s: the token holds key %s but %s is missing; restore the certificate (nothing was created or replaced)", c.conf.Name, c.uri, c.path)
		case c.key == nil && c.cert != nil:
			return fmt.Errorf("CA %s: %s exists but the token has no key %s; restore the key or the configuration (nothing was created or replaced)", c.conf.Name, c.path, c.uri)
		case c != root && c.cert != nil && root.cert == nil:
			return fmt.Errorf("CA %s exists but the root CA does not; refusing to create a new root under it (nothing was created)", c.conf.Name)
		case c != root && c.cert != nil:
			if err := c.cert.CheckSignatureFrom(root.cert); err != nil {
				return fmt.Errorf("CA %s: %s is not signed by the root in %s: %w", c.conf.Name, c.path, root.path, err)
			}
		}
	}
	if err := os.MkdirAll(cfg.Resolve(cfg.CA.CertDir), 0o755); err != nil {
		return fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	for _, c := range parts {
		if c.cert == nil {
			if err := createCA(ctx, p, profiles, root, c); err != nil {
				return fmt.Errorf("CA %s: %w", c.conf.Name, err)
			}
		}
		fmt.Fprintf(out, "  CA %-13s %s  %s\n", c.conf.Name, c.uri, c.path)
	}
	return nil
}

// createCA generates one CA's key and certificate and records both.
func createCA(ctx context.Context, p *platform, profiles *policies.ProfileSet, root, c *caPart) error {
	kt, err := hsm.ParseKeyType(c.conf.KeyTypeOrDefault())
	if err != nil {
		return err
	}
	validity, err := policies.ParseValidity(c.conf.Validity)
	if err != nil {
		return err
	}
	key, err := p.token.GenerateKey(ctx, c.label, kt)
	if err != nil {
		return fmt.Errorf("generating key %s: %w", c.uri, err)
	}
	c.key = key
	if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
		return err
	}
	if c == root {
		c.cert, err = ca.CreateRoot(key, ca.RootConfig{
			CommonName: c.conf.CommonName, Organization: c.conf.Organization,
			OrganizationIdentifier: c.conf.OrganizationIdentifier, Country: c.conf.Country, Validity: validity,
		})
	} else {
		c.cert, err = ca.CreateIssuingCA(root.cert, root.key, key, ca.IssuingCAConfig{
			Name: c.conf.Name, CommonName: c.conf.CommonName, Organization: c.conf.Organization,
			OrganizationIdentifier: c.conf.OrganizationIdentifier, Country: c.conf.Country, Validity: validity,
			BaseURL: p.cfg.PublicBaseURL, Policies: ca.IssuingCAPolicies(profiles, c.conf.Name),
		})
	}
	if err != nil {
		return err
	}
	if err := writeFileExclusive(c.path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", c.path, err)
	}
	fp := sha256.Sum256(c.cert.Raw)
	_, err = p.audit.Append(ctx, audit.Entry{
		Actor: "thiqa-init", Action: "ca.certificate.create", Object: c.conf.Name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{
			"serial": hex.EncodeToString(c.cert.SerialNumber.Bytes()), "subject": c.cert.Subject.String(),
			"issuer": c.cert.Issuer.String(), "notAfter": c.cert.NotAfter, "sha256": hex.EncodeToString(fp[:]), "key": c.uri,
		},
	})
	if err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// caAuditor writes the CA's audit entries to the platform's audit log.
type caAuditor struct{ log *audit.Log }

func (a caAuditor) Append(ctx context.Context, e ca.AuditEntry) error {
	outcome := e.Outcome
	if outcome == "error" {
		outcome = audit.OutcomeFailure
	}
	details := map[string]any{}
	for k, v := range e.Details {
		details[k] = v
	}
	if c := auth.CallerOf(ctx); c != nil && outcome != audit.OutcomeSuccess {
		details["caller"] = c // a refusal names the caller: method, subject, roles
	}
	_, err := a.log.Append(ctx, audit.Entry{Actor: e.Actor, Action: e.Action, Object: e.Object, Outcome: outcome, Details: details})
	return err
}

// openAuthority loads the hierarchy (every issuer's HSM key must match its
// certificate) and builds the issuance service over the store.
func openAuthority(ctx context.Context, p *platform, reg prometheus.Registerer) (*ca.Authority, error) {
	cfg := p.cfg
	parts, err := findHierarchy(ctx, cfg, p.token)
	if err != nil {
		return nil, err
	}
	// The root key may be kept offline: only its certificate is needed here.
	if parts[0].cert == nil {
		return nil, fmt.Errorf("root CA certificate %s is missing: run `thiqa init --data %s`", parts[0].path, cfg.Dir())
	}
	var pending []*caPart
	var active []*caPart
	current := currentGenerations(parts)
	for _, c := range parts[1:] {
		if c.key != nil && c.cert == nil && cfg.CA.Root.Offline {
			pending = append(pending, c)
			continue
		}
		if keyDestroyed(c, current) {
			continue
		}
		active = append(active, c)
		if c.key == nil || c.cert == nil {
			return nil, fmt.Errorf("CA %s is not initialised (key %s, certificate %s): run `thiqa init --data %s`", c.conf.Name, c.uri, c.path, cfg.Dir())
		}
	}
	if len(pending) > 0 {
		return nil, pendingCAsError(cfg, pending)
	}
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return nil, err
	}
	rset, err := cfg.Revocation.Settings(cfg.PublicBaseURL)
	if err != nil {
		return nil, err
	}
	partitions := rset.CRL.Partitions // each certificate names its CRL partition
	var issuers []*ca.Issuer
	for _, c := range active {
		// With hsm.verifyAfterSign the HSM layer checks every signature
		// with the key's public half; the issuer then does not check its
		// ECDSA signatures a second time (RSA ones it always checks).
		c.key.UseSessionCopies() // an issuing CA signs all day (hsm/sessioncopy.go)
		is, err := ca.NewIssuer(c.cert, c.key, ca.IssuerOptions{Name: c.conf.Name, BaseURL: cfg.PublicBaseURL,
			SignerVerifiesECDSA: cfg.HSM.VerifyAfterSign, CRLPartitions: partitions, CA: c.caName(), Generation: c.generation()})
		if err != nil {
			return nil, err
		}
		issuers = append(issuers, is)
	}
	return ca.NewAuthority(ca.AuthorityConfig{
		Root: parts[0].cert, Issuers: issuers, Profiles: profiles,
		Store: p.db.Certificates(func(string) int { return partitions }), Auditor: caAuditor{log: p.audit},
		Logger: p.logger.With("service", "ca"), Metrics: reg,
	})
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
	kt, err := hsm.ParseKeyType(subjectKeyType(p.cfg))
	if err != nil {
		return err
	}
	keys := &tokenKeys{token: p.token, keyType: kt, audit: p.audit}
	api := ca.NewAPI(a, ca.HandlerOptions{
		Caller:       callerOf,
		KeyGenerator: keys,
		Logger:       p.logger.With("service", "ca"),
		// The signing service is wired after the CA: read it at call time.
		Issued: func(ctx context.Context, got *ca.Issued) error {
			if s.signing == nil {
				return nil
			}
			return s.signing.RegisterIssued(ctx, signing.IssuedCertificate{CredentialID: got.CredentialID, CA: got.CA,
				Profile: got.Profile, Serial: got.Serial, DER: got.Certificate.Raw})
		},
	})
	api.Register(s.mux, p.authn.Require)
	s.ca = &wiredCA{authority: a, api: api, keys: keys}
	return nil
}

func subjectKeyType(cfg *config.Config) string {
	if cfg.CA.SubjectKeyType == "" {
		return "ec-p256"
	}
	return cfg.CA.SubjectKeyType
}

// callerOf names the authenticated caller for RequestedBy and the audit log.
func callerOf(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok && pr.Subject != "" {
		return pr.Subject
	}
	return "unknown"
}

// credentialPrefix starts the label of every subject key generated on the
// token: the label is the credential ID.
const credentialPrefix = "cred-"

// tokenKeys generates subject keys for remote signing on the service's
// token (ca.KeyGenerator). The credential ID is the key's label.
type tokenKeys struct {
	token   *hsm.Token
	keyType hsm.KeyType
	audit   *audit.Log
}

// GenerateKey creates a key labelled cred-<32 hex digits> on the token.
func (k *tokenKeys) GenerateKey(ctx context.Context, profile string) (string, crypto.PublicKey, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	id := credentialPrefix + hex.EncodeToString(b[:])
	key, err := k.token.GenerateKey(ctx, id, k.keyType)
	if err != nil {
		return "", nil, err
	}
	actor := "unknown"
	if pr, ok := auth.FromContext(ctx); ok {
		actor = pr.Subject
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(spki)
	if _, err := k.audit.Append(ctx, audit.Entry{
		Actor: actor, Action: "key.generate", Object: key.URI(), Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"keyType": k.keyType.String(), "spkiSHA256": hex.EncodeToString(sum[:]), "profile": profile, "credentialID": id},
	}); err != nil {
		return "", nil, fmt.Errorf("writing audit record: %w", err)
	}
	return id, key.Public(), nil
}

// DeleteKey destroys a key generated for a request the CA then refused, so
// that no orphan key stays on the token, and records it.
func (k *tokenKeys) DeleteKey(ctx context.Context, credentialID string) error {
	if err := k.token.DeleteKey(ctx, credentialID); err != nil {
		return err
	}
	if _, err := k.audit.Append(ctx, audit.Entry{
		Actor: "ca", Action: "key.delete", Object: credentialID, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"reason": "certificate request refused"},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
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
	raw, err := os.ReadFile(*subjectFile)
	if err != nil {
		return fmt.Errorf("reading --subject-file: %w", err)
	}
	var subject map[string]string
	if err := json.Unmarshal(raw, &subject); err != nil {
		return fmt.Errorf("--subject-file: want a JSON object of strings: %w", err)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if !cfg.CA.Enabled() {
		return errors.New("this data folder has no CA configured (ca section of thiqa.yaml)")
	}
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	a, err := openAuthority(ctx, p, nil)
	if err != nil {
		return err
	}
	got, err := a.Issue(ctx, ca.Request{Profile: *profile, CA: *caName, Subject: subject, CSR: csr, RequestID: *requestID, RequestedBy: operatorName()})
	if err != nil {
		return err
	}
	return pem.Encode(env.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: got.Certificate.Raw})
}
