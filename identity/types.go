package identity

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
)

// Sentinel errors the provider's collaborators return (wrapped).
var (
	// ErrNotFound: no such client, login, grant or credential.
	ErrNotFound = errors.New("identity: not found")
	// ErrConflict: the row changed state under us (a login no longer
	// pending, a code already redeemed), or a unique value is taken.
	ErrConflict = errors.New("identity: conflict")
	// ErrReplay: a client assertion's jti was already used.
	ErrReplay = errors.New("identity: client assertion replayed")
	// ErrCodeReused: an authorization code was presented a second time;
	// RedeemCode has revoked what it issued.
	ErrCodeReused = errors.New("identity: authorization code reused")
	// ErrWrongPIN: the PIN given does not match.
	ErrWrongPIN = errors.New("identity: wrong PIN")
	// ErrPINLocked: too many wrong PINs; the credential is locked.
	ErrPINLocked = errors.New("identity: PIN locked")
	// ErrWrongCode: an approval's verification code is not the login's
	// (under number matching the login is then cancelled).
	ErrWrongCode = errors.New("identity: wrong verification code")
	// ErrCredentialUnusable: the signing credential a CSC credential
	// authorization names is not a usable one of the citizen (unknown,
	// another's, certificate expired or revoked, no signing PIN set).
	ErrCredentialUnusable = errors.New("identity: signing credential not usable")
)

// Client authentication methods at the token endpoint.
const (
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthTLSClient     = "tls_client_auth"
)

// Authentication methods of a citizen, as recorded and in metrics.
const (
	MethodMTLS   = "mtls"
	MethodMobile = "mobile"
)

// Client is a registered portal (relying party).
type Client struct {
	ID   string
	Name string
	// RedirectURIs are compared exactly (no wildcards, no prefix match).
	RedirectURIs []string
	// AllowCivilNumber makes sub the citizen's civil number instead of a
	// pairwise identifier.
	AllowCivilNumber bool
	// SectorIdentifier groups clients that share pairwise subjects; by
	// default the host of the first redirect URI (a registration whose
	// redirect URIs are on several hosts must name one: NewClient).
	SectorIdentifier string
	// AuthMethod is AuthPrivateKeyJWT or AuthTLSClient.
	AuthMethod string
	// JWKS is the client's public key set (JSON) for private_key_jwt.
	JWKS []byte
	// TLSSubject is the distinguished name (RFC 4514, as printed by
	// pkix.Name.String) of the client's certificate for tls_client_auth.
	TLSSubject string
	Created    time.Time
}

// Citizen is who logged in, as read from the certificate.
type Citizen struct {
	CivilNumber string `json:"civilNumber"`
	Country     string `json:"country,omitempty"`
	GivenName   string `json:"givenName,omitempty"`
	FamilyName  string `json:"familyName,omitempty"`
	Name        string `json:"name,omitempty"`
	// CertSerial is the certificate's serial (lower-case hex).
	CertSerial string `json:"certSerial,omitempty"`
	// KeyOnToken: the key of that certificate was generated on the
	// service's token (CertificateStatus.KeyOnToken); it decides the
	// login's acr and whether amr says hwk.
	KeyOnToken bool `json:"keyOnToken,omitempty"`
}

// LoginState is where a remote login stands.
type LoginState string

// Login states.
const (
	LoginPending  LoginState = "pending"
	LoginApproved LoginState = "approved"
	LoginDenied   LoginState = "denied"
	LoginUsed     LoginState = "used"
)

// AuthRequest is a validated authorization request.
type AuthRequest struct {
	ClientID      string
	RedirectURI   string
	State         string
	Nonce         string
	Scope         string
	CodeChallenge string
	// Kind is KindCSC for an authorization of the CSC API (its own
	// endpoints, its own access tokens); empty for an OpenID Connect login.
	Kind string `json:",omitempty"`
	// Credential is what a CSC authorization of scope credential
	// authorises.
	Credential *CredentialRequest `json:",omitempty"`
}

// KindCSC marks the authorization requests (and so the logins and grants)
// of the CSC API v2 authorization server.
const KindCSC = "csc"

// CredentialRequest is a CSC credential authorization (CSC API v2 section
// 8.4.2, scope credential): signatures of exactly these hashes with one
// credential.
type CredentialRequest struct {
	CredentialID     string   `json:"credentialID"`
	NumSignatures    int      `json:"numSignatures"`
	HashAlgorithmOID string   `json:"hashAlgorithmOID"`
	Hashes           [][]byte `json:"hashes"`
	// Description is the signing application's words for the citizen.
	Description string `json:"description,omitempty"`
}

// Login is one remote (mobile ID) login in progress.
type Login struct {
	// ID names the session; the citizen's app approves it by ID.
	ID string
	// BrowserKeyHash is SHA-256 of the secret only the browser holds.
	BrowserKeyHash []byte
	Request        AuthRequest
	CivilNumber    string
	// ClientKey names the client that started the login: its address
	// as the login rate limit keys it (clientip.Client.Key: an IPv4
	// address, an IPv6 /64). Empty for logins started before it was
	// recorded. Config.MaxPendingLogins bounds the pending logins of one
	// civil number per ClientKey.
	ClientKey string
	// VerificationCode is shown in the browser and on the phone.
	VerificationCode string
	State            LoginState
	// Citizen, AuthTime are set on approval; Reason on denial.
	Citizen  *Citizen
	AuthTime time.Time
	Reason   string
	Created  time.Time
	Expires  time.Time
}

// PendingCount is how many logins of one citizen await approval
// (Store.CountPendingLogins).
type PendingCount struct {
	// Total counts them all; FromClient those one client started.
	Total, FromClient int
	// Blocked: that client may start no login for the citizen for now,
	// since the citizen denied the logins it had started
	// (Store.BlockLoginStarts).
	Blocked bool
}

// MaxPendingListed is the length of the phone's list of pending logins
// (Store.PendingLogins, PathMobileList): the newest ones. It is also the
// bound on a civil number's pending logins from all clients together, so
// that the list shows every one of them.
const MaxPendingListed = 20

// Grant is an authorization code and what it issued.
type Grant struct {
	// ID is also the access token's jti.
	ID       string
	CodeHash []byte
	Request  AuthRequest
	Citizen  Citizen
	Method   string
	ACR      string
	AMR      []string
	AuthTime time.Time
	Created  time.Time
	// CodeExpires bounds the code's redemption.
	CodeExpires time.Time
	Redeemed    bool
	Revoked     bool
	// AccessExpires is when the access token expires (zero before redemption).
	AccessExpires time.Time
}

// Store keeps the provider's state. Implementations must make the state
// changes atomic: two instances racing for the same login or code see one
// winner.
type Store interface {
	// Client returns a registered client or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// CreateLogin records a new pending login.
	CreateLogin(ctx context.Context, l *Login) error
	// Login returns a login or ErrNotFound.
	Login(ctx context.Context, id string) (*Login, error)
	// UpdateLogin writes l if the stored login is still in state from,
	// else ErrConflict.
	UpdateLogin(ctx context.Context, l *Login, from LoginState) error
	// PendingLogins lists the unexpired pending logins of a citizen, the
	// newest first, at most MaxPendingListed of them.
	PendingLogins(ctx context.Context, civilNumber string, now time.Time) ([]*Login, error)
	// CountPendingLogins counts the unexpired pending logins of a citizen:
	// all of them, and those that the client clientKey started; and
	// reports whether that client's starts are blocked at now.
	CountPendingLogins(ctx context.Context, civilNumber, clientKey string, now time.Time) (PendingCount, error)
	// BlockLoginStarts blocks the clients clientKeys from starting logins
	// for a citizen until until (a block already longer stays), for every
	// node that shares the store.
	BlockLoginStarts(ctx context.Context, civilNumber string, clientKeys []string, until time.Time) error
	// CreateGrant records a freshly issued authorization code.
	CreateGrant(ctx context.Context, g *Grant) error
	// RedeemCode marks the grant of that code hash redeemed and returns it
	// as it was before. A code redeemed before is marked revoked and
	// ErrCodeReused returned with the grant; an unknown code is ErrNotFound.
	RedeemCode(ctx context.Context, codeHash []byte, now time.Time, accessExpires time.Time) (*Grant, error)
	// RevokeGrant marks a grant revoked.
	RevokeGrant(ctx context.Context, id string) error
	// Grant returns a grant by ID or ErrNotFound.
	Grant(ctx context.Context, id string) (*Grant, error)
	// UseAssertion records a client assertion's jti until exp; ErrReplay if
	// the client used it before.
	UseAssertion(ctx context.Context, clientID, jti string, exp time.Time) error
}

// CertificateStatus is what the CA knows about a certificate now, from its
// own records (revocation.Status): whether it issued it (Known) and under
// which profile, its revocation, whether its key is blocked (reported
// compromised: the login is refused), and whether the CA generated the
// key on the service's own token (KeyOnToken: keyInHSM; a key certified
// from a CSR may live anywhere, so a login with it is LoA substantial at
// most and claims no hardware key).
type CertificateStatus = revocation.Status

// StatusChecker asks the CA's own records about a certificate: the one
// certificate status checker of the process (*revocation.Checker).
type StatusChecker interface {
	Status(ctx context.Context, cert *x509.Certificate) (CertificateStatus, error)
}

// RemoteCredential is a citizen's authentication key held on the service's
// token and its certificate.
type RemoteCredential struct {
	ID          string
	Certificate *x509.Certificate
}

// Directory finds a citizen's remote authentication credentials.
type Directory interface {
	// RemoteCredentials returns the citizen-auth credentials with the key
	// on the token enrolled (with a login PIN) for that civil number,
	// newest enrolment first, each with its current certificate, or
	// ErrNotFound. The civil number is stored without its country: the
	// provider skips those whose certificate names another country's
	// (Config.Country).
	RemoteCredentials(ctx context.Context, civilNumber string) ([]*RemoteCredential, error)
}

// KeyResolver returns the signer of a credential's key on the token.
type KeyResolver interface {
	Key(ctx context.Context, credentialID string) (crypto.Signer, error)
}

// PINChecker checks a citizen's login PIN for a credential of the citizen
// with civilNumber: nil, ErrWrongPIN or ErrPINLocked (wrapped).
// Implementations hash slowly and lock after a few wrong tries.
type PINChecker interface {
	CheckPIN(ctx context.Context, credentialID, civilNumber, pin string) error
}

// SigningCredentials is the signing service as the CSC authorization
// server needs it (signing/csc.ProviderCredentials).
type SigningCredentials interface {
	// CheckCredential returns nil when credentialID is a usable signing
	// credential of the citizen with that civil number whose PIN is set,
	// an error wrapping ErrCredentialUnusable (with the reason) or
	// ErrPINLocked when not, or a failure.
	CheckCredential(ctx context.Context, civil, credentialID string) error
	// CheckSigningPIN checks, and records, the citizen's signing PIN for
	// the authorization req by client: nil, or an error wrapping
	// ErrWrongPIN, ErrPINLocked or ErrCredentialUnusable, or a failure.
	CheckSigningPIN(ctx context.Context, civil, clientID string, req *CredentialRequest, pin string) error
	// Activate records the one-time authorisation (SAD) of exactly req's
	// hashes, whose PIN was checked, and returns it with its expiry.
	Activate(ctx context.Context, civil, clientID string, req *CredentialRequest) (sad string, expires time.Time, err error)
}

// Auditor appends to the hash-chained audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}
