package bench

import (
	"context"
	"crypto"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/verify"
)

// Deps is what the load generators need from the deployment they measure
// and may not build themselves: only cmd/thiqa reads the configuration and
// opens the token and the store (DESIGN.md, rule 1). cmd/thiqa implements it.
type Deps interface {
	// Folder reads the configuration of the data folder dir (an empty dir
	// is a refused command line).
	Folder(dir string) (*Folder, error)
	// KeyType checks the name of a key type the token can generate
	// ("ec-p256", "rsa-2048", ...) and returns its canonical name.
	KeyType(name string) (string, error)
	// TrustedLists loads the trusted lists in the files (or at the URLs)
	// tsl offline as `thiqa verify --tsl` does, their XML signatures
	// checked against the certificates in the PEM files tslSigners.
	TrustedLists(ctx context.Context, tsl, tslSigners []string) (verify.TrustedLists, error)
}

// Folder is a data folder whose configuration was read: what the
// generators need of it, and how they open its token and store.
type Folder struct {
	// HSMModule is the path of the PKCS#11 module.
	HSMModule string
	// Country is the deployment's country (ISO 3166 alpha-2), as
	// thiqa.yaml names it (ca.Config.Country: its citizen CA's country,
	// else its root's); "" when the configuration names none (an offline
	// root).
	Country string
	// CAEnabled says the folder has a CA; IdentityEnabled that it serves
	// the digital ID.
	CAEnabled, IdentityEnabled bool
	// PINParams are the login PIN hashing parameters of the digital ID.
	PINParams pin.Params
	// IssuerKey returns the token label of the key of the CA that issues
	// certificates of profile (an unknown profile is a refused command line).
	IssuerKey func(profile string) (string, error)
	// CACertificate reads the certificate of the CA named name.
	CACertificate func(name string) (*x509.Certificate, error)
	// OpenToken opens the token with at least sessions sessions (0: as
	// configured), logging warnings only.
	OpenToken func(ctx context.Context, sessions int) (Token, error)
	// OpenPlatform opens the token (at least sessions sessions), the store
	// and the audit log, for the generators that prepare data in process.
	OpenPlatform func(ctx context.Context, sessions int) (Platform, error)
	// OpenStore opens the store alone.
	OpenStore func(ctx context.Context) (Store, error)
}

// Token is the deployment's open PKCS#11 token.
type Token interface {
	// MintToken signs a development API token for subject and role.
	MintToken(ctx context.Context, subject string, role policies.Role, ttl time.Duration) (string, error)
	// Key finds the key labelled label.
	Key(ctx context.Context, label string) (Key, error)
	// TSAUnitKey finds the key of the current TSA unit.
	TSAUnitKey(ctx context.Context) (Key, error)
	// RawSignRate measures signatures per second of the key labelled label
	// straight through PKCS#11 (a session per goroutine) for d: the ceiling
	// every service's rate is compared with.
	RawSignRate(ctx context.Context, label string, goroutines int, d time.Duration) (float64, error)
	// RawSignRateSessionCopy is RawSignRate with a session copy of the key,
	// as the services sign.
	RawSignRateSessionCopy(ctx context.Context, label string, goroutines int, d time.Duration) (float64, error)
	// Close closes the token.
	Close() error
}

// Platform is the open token with the store and the audit log.
type Platform interface {
	Token
	// BenchKey finds the token's benchmark key of keyType, generating it
	// (and recording that in the audit log) when it does not exist.
	BenchKey(ctx context.Context, keyType string) (Key, error)
	// Authority opens the CA's issuance service.
	Authority(ctx context.Context) (Issuer, error)
	// EnrolMobileID enrols credential as a mobile ID with loginPIN.
	EnrolMobileID(ctx context.Context, credential, loginPIN, actor string) error
	// AddClient registers a relying party of the digital ID.
	AddClient(ctx context.Context, c *identity.Client) error
	// Operator names the person running the command, for audit records.
	Operator() string
}

// Store is the deployment's open store.
type Store interface {
	// AllStatuses calls fn with the serial and status of every certificate
	// issued by the CA named ca, until fn returns an error.
	AllStatuses(ctx context.Context, ca string, fn func(serial *big.Int, st ocsp.Status) error) error
	// CertificateDER returns the certificate with serial.
	CertificateDER(ctx context.Context, serial *big.Int) ([]byte, error)
	// ChainReader reads the audit chain: its records in order from a
	// sequence number on (AuditRecords) and its head (AuditHead).
	audit.ChainReader
	// Close closes the store.
	Close() error
}

// Issuer issues certificates in process (*ca.Authority).
type Issuer interface {
	// Issue issues the certificate req asks for.
	Issue(ctx context.Context, req ca.Request) (*ca.Issued, error)
}

// Key is a signing key on the token.
type Key struct {
	Signer crypto.Signer // signs through Thiqa's PKCS#11 layer
	Label  string        // object label, for the raw rates
	Type   string        // key type, e.g. ec-p256
}
