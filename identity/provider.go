package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

// Paths the provider serves, relative to the issuer URL.
const (
	PathDiscovery     = "/.well-known/openid-configuration"
	PathJWKS          = "/oidc/jwks"
	PathAuthorize     = "/oidc/authorize"
	PathComplete      = "/oidc/authorize/complete"
	PathToken         = "/oidc/token"
	PathUserinfo      = "/oidc/userinfo"
	PathMobileList    = "/oidc/mobile/sessions"
	PathMobileApprove = "/oidc/mobile/approve"
	// PathMobileDenyAll is where the citizen's phone denies every login
	// awaiting their approval at once.
	PathMobileDenyAll = "/oidc/mobile/deny-all"
	// PathCSC is the base URI of the CSC API v2 OAuth 2.0 authorization
	// server (the "oauth2" member of /csc/v2/info), relative to the issuer.
	PathCSC          = "/csc/v2"
	PathCSCAuthorize = PathCSC + "/oauth2/authorize"
	PathCSCToken     = PathCSC + "/oauth2/token"
)

// ProfileCitizenAuth is the certificate profile a login certificate must
// have been issued under (policies.ProfileCitizenAuth).
const ProfileCitizenAuth = "citizen-auth"

// Config wires a Provider.
type Config struct {
	// Issuer is the provider's URL (https in production), without a
	// trailing slash; endpoints hang below it.
	Issuer string
	// Signer signs ID tokens and access tokens (a key on the token).
	Signer crypto.Signer
	// KeyID is the JWS kid; empty means the RFC 7638 thumbprint.
	KeyID string
	// PairwiseSecret keys the pairwise subject HMAC (at least 32 bytes).
	PairwiseSecret []byte
	// CitizenRoots and CitizenIntermediates verify mutual-TLS citizen
	// certificates; nil roots disables the mutual-TLS login.
	CitizenRoots         *x509.CertPool
	CitizenIntermediates *x509.CertPool
	// Country is the deployment's country (ISO 3166 alpha-2, e.g. OM): a
	// certificate whose serialNumber is IDC<other country>-<number> logs no
	// one in, since that number names no citizen of this deployment. Empty
	// when not known: a number of any country logs in (as before).
	Country string

	Store     Store
	Status    StatusChecker
	Directory Directory
	Keys      KeyResolver
	PINs      PINChecker
	Audit     Auditor

	// PhoneAuth guards the phone side of the remote login (PathMobileList,
	// PathMobileApprove, PathMobileDenyAll): middleware that lets through only a citizen
	// authenticated with their own credentials, and answers every other
	// request itself (401 without credentials, 403 for other roles). Caller
	// then names that citizen. cmd/thiqa builds both from internal/auth
	// (policies.ActionApproveLogin). Without them the phone side is not
	// served, and remote logins cannot be approved.
	PhoneAuth func(http.Handler) http.Handler
	// Caller returns the civil number of the citizen PhoneAuth let through
	// (CitizenCaller behind internal/auth).
	Caller func(r *http.Request) (civilNumber string, ok bool)

	// Signing, when set, makes the provider the OAuth 2.0 authorization
	// server of the CSC API v2 (section 8.4) at PathCSCAuthorize and
	// PathCSCToken: citizens log in as they do for a portal and give a
	// signing application access to the signing service (scope service)
	// or the signature of exact hashes (scope credential, with the signing
	// PIN).
	Signing *SigningConfig

	// Lifetimes; zero picks the defaults (code 60 s, login 5 min, tokens 10 min,
	// client assertion at most 5 min).
	CodeLifetime         time.Duration
	LoginLifetime        time.Duration
	IDTokenLifetime      time.Duration
	AccessTokenLifetime  time.Duration
	MaxAssertionLifetime time.Duration
	// MaxPendingLogins bounds the mobile logins awaiting approval for one
	// civil number that one client address (clientip Key, as LoginRate
	// keys it: an IPv4 address, an IPv6 /64) has started (default 5); all
	// addresses together may have MaxPendingListed (20, the phone's list)
	// await approval for the number. A further start is refused (429,
	// audited) until one ends, so that nobody can bury a citizen's phone
	// under approval requests (push bombing); and since the bound is per
	// address, someone who keeps a number's logins pending from one
	// address does not lock the citizen's own logins out. The citizen can
	// deny them all from the phone (PathMobileDenyAll), and the addresses
	// that started them are then refused for one LoginLifetime. The refusal reads
	// the same whether the number has a mobile ID or not. At most
	// MaxPendingListed. A node counts and inserts as one step; nodes that
	// share a database may each let one more in.
	MaxPendingLogins int
	// NumberMatching: the phone side's list (PathMobileList) leaves out
	// the verification codes, and an approval must carry the code the
	// citizen typed from the browser in front of them; a wrong code
	// cancels that login (one try: a few digits cannot be guessed), a
	// missing one is refused (400) without touching it. A citizen whose
	// number someone else used to start a login (push bombing) cannot
	// approve it by mistake: they do not know its code.
	NumberMatching bool
	// LoginRate and LoginBurst bound the mobile logins one client IP
	// (clientip, behind the trusted proxies) starts: LoginBurst at once,
	// LoginRate per second on average (defaults DefaultLoginRate,
	// DefaultLoginBurst); past it the login form again with 429 and
	// Retry-After, as past MaxPendingLogins.
	LoginRate  float64
	LoginBurst int
	// TokenRate and TokenBurst bound the requests one client IP sends to
	// the token endpoints (defaults DefaultTokenRate, DefaultTokenBurst);
	// past it 429 with Retry-After and an OAuth error body
	// (temporarily_unavailable). The first refusal of each run of
	// refusals of an address is audited, every one counted in
	// thiqa_oidc_rate_limited_total: a client that keeps knocking cannot
	// fill the audit log.
	TokenRate  float64
	TokenBurst int
	// ACR is the acr claim of a login with a key the CA generated on its
	// token (a mobile ID); empty means eIDAS LoA high. A login with a key
	// the CA certified from a CSR (an ID card, a browser key: the CA cannot
	// know where it lives) gets at most LoA substantial: ACRSubstantial,
	// or ACR itself when that is ACRLow.
	ACR string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// SigningConfig is what the CSC authorization server needs.
type SigningConfig struct {
	// Audience is the aud claim of its access tokens: the signing
	// service's identifier, which the resource expects (cmd/thiqa trusts
	// the issuer for it with internal/auth.DelegatedIssuer).
	Audience string
	// Credentials checks the citizens' signing credentials and PINs and
	// activates them.
	Credentials SigningCredentials
	// MaxHashes bounds the hashes of one credential authorization.
	MaxHashes int
}

// defaultMaxPendingLogins is Config.MaxPendingLogins when unset.
const defaultMaxPendingLogins = 5

// DefaultACR is the eIDAS level of assurance "high": the login proves
// possession of a key in secure hardware (generated on the service's
// token) bound to a certificate issued after identity proofing.
const DefaultACR = "http://eidas.europa.eu/LoA/high"

// The lower eIDAS levels of assurance (Implementing Regulation (EU)
// 2015/1502): a login with a key from a CSR is ACRSubstantial at most.
const (
	ACRSubstantial = "http://eidas.europa.eu/LoA/substantial"
	ACRLow         = "http://eidas.europa.eu/LoA/low"
)

// assurance returns the acr and amr claims of a login of citizen by
// method: hwk (RFC 8176) and the configured ACR only when the key was
// generated on the service's token; a CSR key proves possession (pop) of
// a key that may be anywhere, so at most LoA substantial.
func (p *Provider) assurance(citizen Citizen, method string) (acr string, amr []string) {
	acr, amr = p.cfg.ACR, []string{"pop"}
	if citizen.KeyOnToken {
		amr = append(amr, "hwk")
	} else if acr != ACRLow {
		acr = ACRSubstantial
	}
	if method == MethodMobile {
		amr = append(amr, "pin", "mfa")
	}
	return acr, amr
}

// Provider is the OpenID Connect provider. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	issuer  *url.URL
	jsigner jose.Signer // ID tokens (typ JWT)
	atSign  jose.Signer // access tokens (typ at+jwt)
	jwk     jose.JSONWebKey
	alg     jose.SignatureAlgorithm
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	// logins and tokens are the per-client-IP rate limits.
	logins, tokens *ratelimit.Limiter
	// userinfoRefusals bounds the recorded userinfo refusals of an
	// address and of all addresses together (userinfoRecorded); the
	// served requests take nothing from it.
	userinfoRefusals *ratelimit.RefusalBudget
	// authorizeRefusals bounds the recorded refusals of malformed
	// authorization requests (authorizeRecorded).
	authorizeRefusals *ratelimit.RefusalBudget
	// tokenRefusals bounds the recorded refusals of token requests whose
	// client did not authenticate (tokenRefused).
	tokenRefusals *ratelimit.RefusalBudget
	// starts serialises the count of a civil number's pending logins and
	// the insert of a new one (Config.MaxPendingLogins), striped by civil
	// number: concurrent starts each counted the same logins and all got
	// in, past the bound.
	starts [64]sync.Mutex
}

// New validates cfg and builds the provider.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("identity: issuer %q must be an absolute http(s) URL without query, fragment or trailing slash", cfg.Issuer)
	}
	if cfg.Signer == nil {
		return nil, errors.New("identity: no token signing key")
	}
	if len(cfg.PairwiseSecret) < 32 {
		return nil, errors.New("identity: the pairwise secret must have at least 32 bytes")
	}
	if cfg.Store == nil || cfg.Status == nil || cfg.Audit == nil {
		return nil, errors.New("identity: Store, Status and Audit are required")
	}
	if (cfg.PhoneAuth == nil) != (cfg.Caller == nil) {
		return nil, errors.New("identity: PhoneAuth and Caller go together")
	}
	if s := cfg.Signing; s != nil && (s.Audience == "" || s.Credentials == nil || s.MaxHashes < 1) {
		return nil, errors.New("identity: Signing needs an audience, the credentials and a positive MaxHashes")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.CodeLifetime, 60*time.Second)
	def(&cfg.LoginLifetime, 5*time.Minute)
	def(&cfg.IDTokenLifetime, 10*time.Minute)
	def(&cfg.AccessTokenLifetime, 10*time.Minute)
	def(&cfg.MaxAssertionLifetime, 5*time.Minute)
	if cfg.MaxPendingLogins <= 0 {
		cfg.MaxPendingLogins = defaultMaxPendingLogins
	}
	if cfg.MaxPendingLogins > MaxPendingListed {
		return nil, fmt.Errorf("identity: MaxPendingLogins must be at most %d", MaxPendingListed)
	}
	if cfg.ACR == "" {
		cfg.ACR = DefaultACR
	}
	if cfg.LoginRate < 0 || cfg.TokenRate < 0 || cfg.LoginBurst < 0 || cfg.TokenBurst < 0 ||
		math.IsNaN(cfg.LoginRate) || math.IsInf(cfg.LoginRate, 0) || math.IsNaN(cfg.TokenRate) || math.IsInf(cfg.TokenRate, 0) {
		return nil, errors.New("identity: the rate limits must be finite and not negative")
	}
	if cfg.LoginRate == 0 {
		cfg.LoginRate = DefaultLoginRate
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = DefaultLoginBurst
	}
	if cfg.TokenRate == 0 {
		cfg.TokenRate = DefaultTokenRate
	}
	if cfg.TokenBurst == 0 {
		cfg.TokenBurst = DefaultTokenBurst
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := josesigner.New(cfg.Signer, cfg.KeyID)
	if err != nil {
		return nil, fmt.Errorf("identity: token signing key: %w", err)
	}
	key := jose.SigningKey{Algorithm: js.Algorithm(), Key: js}
	idSigner, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	atSigner, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Provider{
		cfg: cfg, issuer: u, jsigner: idSigner, atSign: atSigner, jwk: *js.Public(), alg: js.Algorithm(),
		log: cfg.Logger, m: m, now: cfg.Now,
		logins: ratelimit.New(cfg.LoginRate, cfg.LoginBurst, cfg.Now),
		tokens: ratelimit.New(cfg.TokenRate, cfg.TokenBurst, cfg.Now),
		// The same rate as the token endpoints: a portal's server calls
		// userinfo after each token request.
		userinfoRefusals:  ratelimit.NewRefusalBudget(cfg.TokenRate, cfg.TokenBurst, ratelimit.OverallRate, ratelimit.OverallBurst, cfg.Now),
		authorizeRefusals: ratelimit.NewAnonymousRefusalBudget(cfg.Now),
		tokenRefusals:     ratelimit.NewAnonymousRefusalBudget(cfg.Now),
	}, nil
}

// Mux is where the provider mounts its routes: an *http.ServeMux, or
// cmd/thiqa's mux that also records its route table.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register adds the provider's routes to mux.
func (p *Provider) Register(mux Mux) {
	mux.Handle("GET "+PathDiscovery, http.HandlerFunc(p.discovery))
	mux.Handle("GET "+PathJWKS, http.HandlerFunc(p.jwks))
	mux.Handle("GET "+PathAuthorize, http.HandlerFunc(p.authorize))
	mux.Handle("POST "+PathAuthorize, http.HandlerFunc(p.authorize))
	mux.Handle("POST "+PathComplete, http.HandlerFunc(p.complete))
	mux.Handle("POST "+PathToken, http.HandlerFunc(p.token))
	mux.Handle("GET "+PathUserinfo, http.HandlerFunc(p.userinfo))
	mux.Handle("POST "+PathUserinfo, http.HandlerFunc(p.userinfo))
	if p.cfg.PhoneAuth != nil {
		mux.Handle("GET "+PathMobileList, p.cfg.PhoneAuth(http.HandlerFunc(p.mobileList)))
		mux.Handle("POST "+PathMobileApprove, p.cfg.PhoneAuth(http.HandlerFunc(p.mobileApprove)))
		mux.Handle("POST "+PathMobileDenyAll, p.cfg.PhoneAuth(http.HandlerFunc(p.mobileDenyAll)))
	}
	if p.cfg.Signing != nil {
		mux.Handle("GET "+PathCSCAuthorize, http.HandlerFunc(p.cscAuthorize))
		mux.Handle("POST "+PathCSCAuthorize, http.HandlerFunc(p.cscAuthorize))
		mux.Handle("POST "+PathCSCToken, http.HandlerFunc(p.cscToken))
	}
}

// Handler returns a mux serving only the provider.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	p.Register(mux)
	return mux
}

// PublicJWK is the public half of the token signing key.
func (p *Provider) PublicJWK() jose.JSONWebKey { return p.jwk }

func (p *Provider) endpoint(path string) string { return p.cfg.Issuer + path }

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// audit writes one audit record; a failure is logged (the audit log
// itself retries and reports).
func (p *Provider) audit(ctx context.Context, actor, action, object, outcome string, details map[string]any) error {
	if actor == "" {
		actor = "unknown"
	}
	if c := auth.CallerOf(ctx); c != nil && outcome != audit.OutcomeSuccess {
		// A refusal of an authenticated caller (the phone side) names them.
		if details == nil {
			details = map[string]any{}
		}
		details["caller"] = c
	}
	_, err := p.cfg.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Object: object, Outcome: outcome, Details: details})
	if err != nil {
		p.log.ErrorContext(ctx, "audit append failed", "action", action, "err", err)
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}
