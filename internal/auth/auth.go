// Package auth authenticates and authorises callers of Thiqa's HTTP APIs:
// bearer JWTs from configured issuers (verified with go-jose against the
// issuers' JWKS) and mutual-TLS client certificates (identity from the
// subject's organizationIdentifier or serialNumber). Roles map to permitted
// actions through policies.Allowed; Require wraps handlers with both checks.
// It also mints development tokens and writes the JWKS that trusts them.
package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/policies"
)

// Errors returned by Authenticate. Invalid credentials are wrapped with the
// reason; reasons never contain the presented token.
var (
	// ErrNoCredentials means the request carries neither a bearer token nor
	// a client certificate.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalidCredentials means the presented credentials were refused.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
)

// Options are the runtime dependencies of an Authenticator; all optional.
type Options struct {
	// Logger receives refusals and JWKS events; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives the package's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// HTTPClient fetches JWKS URLs; a client with a 10s timeout when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// JWKSFetchTimeout bounds one JWKS download; 5s when zero.
	JWKSFetchTimeout time.Duration
	// JWKSRefreshInterval is the least time between two downloads of a JWKS
	// URL when tokens name unknown keys; 30s when zero.
	JWKSRefreshInterval time.Duration
	// JWKSCacheTTL is how long a downloaded JWKS is used before it is
	// downloaded again; 1h when zero.
	JWKSCacheTTL time.Duration
	// TokenCacheSize is how many verified bearer tokens are remembered so
	// that a token presented again skips its signature check (its claims are
	// always checked again): DefaultTokenCacheSize when zero, no cache when
	// negative.
	TokenCacheSize int
	// CheckCertificate, when set, is called with the verified chain of every
	// client certificate (leaf first), e.g. to refuse revoked certificates.
	CheckCertificate func(ctx context.Context, chain []*x509.Certificate) error
}

// Authenticator authenticates requests and authorises them against policies.
// It is safe for concurrent use.
type Authenticator struct {
	log     *slog.Logger
	now     func() time.Time
	issuers map[string]*issuer
	allAlgs []jose.SignatureAlgorithm // union of the issuers' allow-lists

	clientCAs    []*x509.Certificate
	clientCAPool *x509.CertPool
	rules        []MTLSRule
	checkCert    func(ctx context.Context, chain []*x509.Certificate) error

	metrics *metrics
	tokens  *tokenCache // nil: every token is verified
}

// issuer is a validated IssuerConfig with its key source.
type issuer struct {
	cfg    IssuerConfig
	algs   []jose.SignatureAlgorithm
	skew   time.Duration
	roles  map[policies.Role]bool // nil: any role
	source keySource
}

// New validates cfg and builds an Authenticator: JWKS files and client CA
// files are read now; JWKS URLs are fetched on first use (or by Reload).
func New(cfg Config, opts Options) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{
		log:       opts.Logger,
		now:       opts.Now,
		issuers:   map[string]*issuer{},
		rules:     cfg.MTLS.Rules,
		checkCert: opts.CheckCertificate,
		tokens:    newTokenCache(opts.TokenCacheSize),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if len(a.rules) == 0 {
		a.rules = DefaultMTLSRules()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	seenAlg := map[jose.SignatureAlgorithm]bool{}
	for _, ic := range cfg.Issuers {
		is := &issuer{cfg: ic, algs: ic.algorithms(), skew: ic.ClockSkew}
		if is.skew == 0 {
			is.skew = DefaultClockSkew
		}
		if len(ic.Roles) > 0 {
			is.roles = map[policies.Role]bool{}
			for _, r := range ic.Roles {
				is.roles[r] = true
			}
		}
		if ic.JWKSFile != "" {
			src, err := newFileSource(ic.JWKSFile, a.now, a.log)
			if err != nil {
				return nil, fmt.Errorf("auth: issuer %q: %w", ic.Issuer, err)
			}
			is.source = src
		} else {
			is.source = &urlSource{
				url:         ic.JWKSURL,
				client:      client,
				timeout:     orDefault(opts.JWKSFetchTimeout, 5*time.Second),
				minInterval: orDefault(opts.JWKSRefreshInterval, 30*time.Second),
				maxAge:      orDefault(opts.JWKSCacheTTL, time.Hour),
				now:         a.now,
				log:         a.log,
				onFetch:     m.jwksFetched(ic.Issuer),
			}
		}
		a.issuers[ic.Issuer] = is
		for _, alg := range is.algs {
			if !seenAlg[alg] {
				seenAlg[alg] = true
				a.allAlgs = append(a.allAlgs, alg)
			}
		}
	}
	if len(cfg.MTLS.ClientCAFiles) > 0 {
		a.clientCAPool, a.clientCAs, err = loadClientCAs(cfg.MTLS.ClientCAFiles)
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Reload re-reads every issuer's JWKS (files and URLs) now. It returns the
// joined errors; issuers whose reload failed keep their previous keys.
func (a *Authenticator) Reload(ctx context.Context) error {
	var errs []error
	for name, is := range a.issuers {
		if err := is.source.reload(ctx); err != nil {
			errs = append(errs, fmt.Errorf("issuer %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Authenticate identifies the caller of r: by its bearer JWT when the request
// has an Authorization header, otherwise by its verified TLS client
// certificate. It returns ErrNoCredentials when there is neither, and an
// error wrapping ErrInvalidCredentials when the credentials are refused.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	p, _, err := a.authenticate(r)
	return p, err
}

// authenticate also reports the method tried: "jwt", "mtls" or "none".
func (a *Authenticator) authenticate(r *http.Request) (*Principal, string, error) {
	raw, present, err := bearerToken(r)
	if err != nil {
		return nil, MethodJWT, invalid(err)
	}
	if present {
		p, err := a.verifyToken(r.Context(), raw)
		if err != nil {
			return nil, MethodJWT, invalid(err)
		}
		return p, MethodJWT, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if len(r.TLS.VerifiedChains) == 0 {
			return nil, MethodMTLS, invalid(errors.New("client certificate was not verified"))
		}
		p, err := a.authenticateCertificate(r.TLS.VerifiedChains)
		if err != nil {
			return nil, MethodMTLS, invalid(err)
		}
		if a.checkCert != nil {
			var chain []*x509.Certificate
			for _, c := range r.TLS.VerifiedChains {
				if len(c) > 0 && a.isClientCA(c[len(c)-1]) {
					chain = c
					break
				}
			}
			if err := a.checkCert(r.Context(), chain); err != nil {
				return nil, MethodMTLS, invalid(fmt.Errorf("client certificate refused: %w", err))
			}
		}
		return p, MethodMTLS, nil
	}
	return nil, "none", ErrNoCredentials
}

func invalid(reason error) error {
	return fmt.Errorf("%w: %w", ErrInvalidCredentials, reason)
}

// reasonOf is the part of an invalid-credentials error after the sentinel's
// text: what a log line or a problem detail reports.
func reasonOf(err error) string {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			if e != ErrInvalidCredentials {
				return e.Error()
			}
		}
	}
	return err.Error()
}
