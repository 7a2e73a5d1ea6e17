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

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/ratelimit"
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
	// ErrCertificateRefused is what Options.CheckCertificate wraps when
	// this deployment's records refuse a client certificate (revoked,
	// unknown, blocked): Authenticate then answers ErrInvalidCredentials.
	// Any other error of the check means the status could not be learnt,
	// and Authenticate answers ErrUnavailable.
	ErrCertificateRefused = errors.New("auth: client certificate refused")
	// ErrUnavailable means the credentials could not be checked now (the
	// certificate status could not be read): the request is refused, but
	// not because of the caller.
	ErrUnavailable = errors.New("auth: credentials cannot be checked now")
	// ErrTokenExpired is the reason (wrapped with ErrInvalidCredentials)
	// for a bearer token past its expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrCertificateExpired is the reason (wrapped with
	// ErrInvalidCredentials) for a client certificate outside its validity.
	ErrCertificateExpired = errors.New("client certificate expired or not yet valid")
)

// Auditor records the refusals of Require before the answer leaves (those
// of callers who did not authenticate within a budget, refusalbound.go;
// internal/audit.Log implements it).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

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
	// CheckCertificate is called with the verified chain of every client
	// certificate (leaf first, ending at a configured client CA) on every
	// request: it refuses revoked certificates with an error wrapping
	// ErrCertificateRefused. It is required when mutual TLS is configured:
	// every path that accepts a client certificate goes through it.
	CheckCertificate func(ctx context.Context, chain []*x509.Certificate) error
	// Audit receives one record for every refusal of Require (who, what,
	// why) before the answer is written; none are written when nil.
	Audit Auditor
	// Delegated are authorization servers of this deployment trusted for
	// delegated access tokens only (DelegatedIssuer); their issuers must
	// not be among the configured ones.
	Delegated []DelegatedIssuer
	// Country is the deployment's country (ISO 3166 alpha-2, e.g. OM): a
	// client certificate's serialNumber IDC<country>-<number> names one of
	// its citizens only for this country (CivilNumberIn), and the citizens
	// of bearer tokens are of this country. Empty when not known: a civil
	// number of any country counts, as before countries were compared.
	Country string
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
	audit        Auditor
	country      string // Options.Country

	metrics *metrics
	tokens  *tokenCache // nil: every token is verified
	// refusals bounds the records of refusals of callers who did not
	// authenticate (refusalbound.go).
	refusals *ratelimit.RefusalBudget
}

// issuer is a validated IssuerConfig with its key source.
type issuer struct {
	cfg    IssuerConfig
	algs   []jose.SignatureAlgorithm
	skew   time.Duration
	roles  map[policies.Role]bool // nil: any role
	source keySource
	// delegated is set for a DelegatedIssuer: its tokens are delegated
	// access tokens only.
	delegated *DelegatedIssuer
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
		audit:     opts.Audit,
		country:   opts.Country,
		tokens:    newTokenCache(opts.TokenCacheSize),
	}
	if a.country != "" && !policies.IsCountryCode(a.country) {
		return nil, fmt.Errorf("auth: country %q is not an ISO 3166 alpha-2 code", a.country)
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.refusals = ratelimit.NewAnonymousRefusalBudget(a.now)
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
		a.addIssuer(is, seenAlg)
	}
	for i, d := range opts.Delegated {
		is, err := delegatedIssuer(d)
		if err != nil {
			return nil, fmt.Errorf("auth: delegated issuer %d (%q): %w", i, d.Issuer, err)
		}
		if a.issuers[d.Issuer] != nil {
			return nil, fmt.Errorf("auth: issuer %q is trusted twice (configured and delegated)", d.Issuer)
		}
		a.addIssuer(is, seenAlg)
	}
	if len(cfg.MTLS.ClientCAFiles) > 0 {
		if a.checkCert == nil {
			return nil, errors.New("auth: mutual TLS is configured but no certificate status check is given")
		}
		a.clientCAPool, a.clientCAs, err = loadClientCAs(cfg.MTLS.ClientCAFiles)
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// addIssuer trusts is and allows its algorithms (seen collects them).
func (a *Authenticator) addIssuer(is *issuer, seen map[jose.SignatureAlgorithm]bool) {
	a.issuers[is.cfg.Issuer] = is
	for _, alg := range is.algs {
		if !seen[alg] {
			seen[alg] = true
			a.allAlgs = append(a.allAlgs, alg)
		}
	}
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
// certificate, which must be within its validity now and pass the
// certificate status check. It returns ErrNoCredentials when there is
// neither, an error wrapping ErrInvalidCredentials when the credentials are
// refused, and one wrapping ErrUnavailable when they cannot be checked now.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	p, _, err := a.authenticate(r)
	return p, err
}

// attempt is what authenticate learnt about the caller, also when it
// refused them: the method tried and the client certificate presented.
type attempt struct {
	method string // MethodJWT, MethodMTLS or "none"
	cert   *x509.Certificate
}

// authenticate also reports what was tried.
func (a *Authenticator) authenticate(r *http.Request) (*Principal, attempt, error) {
	if p, ok := sessionOf(r.Context()); ok {
		if p.CivilNumber != "" && p.CivilCountry == "" {
			// A page's citizen (the portal's OIDC login names the number
			// only) is one of this deployment's: its provider logs in no
			// other country's. Without the country OwnsCertificate would
			// match IDC<any country>-<number>.
			cp := *p
			a.setCivilCountry(&cp)
			p = &cp
		}
		return p, attempt{method: MethodSession}, nil
	}
	raw, present, err := bearerToken(r)
	if err != nil {
		return nil, attempt{method: MethodJWT}, invalid(err)
	}
	if present {
		p, err := a.verifyToken(r.Context(), raw)
		if errors.Is(err, ErrUnavailable) {
			return nil, attempt{method: MethodJWT}, err
		}
		if err != nil {
			return nil, attempt{method: MethodJWT}, invalid(err)
		}
		return p, attempt{method: MethodJWT}, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		at := attempt{method: MethodMTLS, cert: r.TLS.PeerCertificates[0]}
		if len(r.TLS.VerifiedChains) == 0 {
			return nil, at, invalid(errors.New("client certificate was not verified"))
		}
		p, chain, err := a.authenticateCertificate(r.TLS.VerifiedChains)
		if err != nil {
			return nil, at, invalid(err)
		}
		// The handshake checked the validity, but a connection may be
		// kept open past the certificate's end. From here on a refusal is
		// of a certificate whose key the caller holds and that names them
		// (identified): a revoked one may be a stolen key.
		if now := a.now(); now.Before(chain[0].NotBefore) || now.After(chain[0].NotAfter) {
			return nil, at, invalid(identified(fmt.Errorf("%w (valid %s to %s)", ErrCertificateExpired,
				chain[0].NotBefore.UTC().Format(time.RFC3339), chain[0].NotAfter.UTC().Format(time.RFC3339))))
		}
		if err := a.checkCert(r.Context(), chain); err != nil {
			if errors.Is(err, ErrCertificateRefused) {
				return nil, at, invalid(identified(err))
			}
			return nil, at, identified(fmt.Errorf("%w: checking the client certificate: %w", ErrUnavailable, err))
		}
		return p, at, nil
	}
	return nil, attempt{method: "none"}, ErrNoCredentials
}

// Recheck tells whether the credential p was authenticated with still
// holds now: not expired, its client certificate not refused by
// CheckCertificate (revoked, blocked), its delegated grant not revoked.
// What outlives the request that authenticated p (a portal session) asks
// it again before acting for p. Its errors are Authenticate's: wrapping
// ErrInvalidCredentials, or ErrUnavailable when the status cannot be
// learnt now. A principal that was not made by an Authenticator (nothing
// to recheck) holds.
func (a *Authenticator) Recheck(ctx context.Context, p *Principal) error {
	if !p.Expires.IsZero() && a.now().After(p.Expires) {
		if p.Method == MethodMTLS {
			return invalid(ErrCertificateExpired)
		}
		return invalid(ErrTokenExpired)
	}
	if len(p.chain) > 0 && a.checkCert != nil {
		if err := a.checkCert(ctx, p.chain); err != nil {
			if errors.Is(err, ErrCertificateRefused) {
				return invalid(err)
			}
			return fmt.Errorf("%w: checking the client certificate: %w", ErrUnavailable, err)
		}
	}
	if is := a.issuers[p.Issuer]; p.Grant != nil && is != nil {
		if err := is.checkRevoked(ctx, p); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return err
			}
			return invalid(err)
		}
	}
	return nil
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
