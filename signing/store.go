package signing

import (
	"context"
	"crypto"
	"errors"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// What the service consumes, declared here and sized to its need: the
// store (store.SigningCredentials implements Store), the keys on the token
// (cmd adapts hsm.Token to a KeyResolver) and the audit log.

// ErrNotFound is returned (wrapped) by a Store for a row that does not exist.
var ErrNotFound = errors.New("signing: not found")

// Owner kinds of a signing credential.
const (
	// OwnerAgency owns an organisation-seal credential: its owner is the
	// agency's organizationIdentifier.
	OwnerAgency = "agency"
	// OwnerCitizen owns a citizen-signing credential: its owner is the
	// citizen's civil number.
	OwnerCitizen = "citizen"
)

// CredentialRecord is a key on the token certified for signing or sealing,
// bound to its owner, as the store keeps it.
type CredentialRecord struct {
	// ID is the credential ID the CA returned at issuance (the key's label).
	ID string
	// OwnerKind is OwnerAgency or OwnerCitizen.
	OwnerKind string
	// OwnerID is the agency's organizationIdentifier or the citizen's civil number.
	OwnerID string
	// Profile is the certificate profile (organisation-seal, citizen-signing).
	Profile string
	// KeyLabel is the key's label on the token.
	KeyLabel string
	// CertSerial is the certificate's serial (lower-case hex).
	CertSerial string
	// ChainDER is the certificate then its issuers, DER, concatenated.
	ChainDER []byte
	// NotAfter is the certificate's expiry.
	NotAfter time.Time
	// PINSet reports whether the owner has set a signing PIN.
	PINSet bool
	// PINFailures is the count of consecutive wrong PIN tries.
	PINFailures int
	// ActivationPending reports that a registration officer reset the PIN
	// and the owner has not yet set a new one with the activation code.
	ActivationPending bool
	// CreatedAt is when the credential was recorded.
	CreatedAt time.Time
}

// IssuedCertificate is a certificate the CA issued for a key it generated
// on the token (keyInHSM): where a credential comes from.
type IssuedCertificate struct {
	// CredentialID names the key (its label on the token).
	CredentialID string
	// CA is the issuing CA's name, Profile the certificate profile.
	CA, Profile string
	// Serial is the certificate's serial (lower-case hex).
	Serial string
	// DER is the certificate.
	DER []byte
	// KeyLabel is the key's label on the token: the credential ID, or the
	// new label of a re-keyed credential's key ("" means CredentialID).
	KeyLabel string
}

// SAD is a one-time authorisation (signature activation data) of a
// credential for exact hashes.
type SAD struct {
	// CredentialID is the credential authorised.
	CredentialID string
	// HashAlg is the hash algorithm OID the hashes were made with.
	HashAlg string
	// Hashes are the authorised hash values.
	Hashes [][]byte
	// NumSignatures is how many signatures were authorised.
	NumSignatures int
	// ExpiresAt ends the authorisation.
	ExpiresAt time.Time
}

// CredentialStore keeps the signing credentials and reads what the CA
// issued and revoked.
type CredentialStore interface {
	// Credential returns the credential with that ID, or ErrNotFound.
	Credential(ctx context.Context, id string) (*CredentialRecord, error)
	// RegisterCredential records c unless a credential with its ID exists;
	// it returns the stored credential either way (the first one wins).
	RegisterCredential(ctx context.Context, c CredentialRecord) (*CredentialRecord, error)
	// CredentialsOf lists an owner's credentials, oldest first.
	CredentialsOf(ctx context.Context, kind, owner string) ([]*CredentialRecord, error)
	// UnregisteredCredentials returns up to limit issued certificates of
	// keys on the token that are not yet recorded as credentials.
	UnregisteredCredentials(ctx context.Context, limit int) ([]IssuedCertificate, error)
	// SwitchCredential moves credential id to its renewed or re-keyed
	// certificate c (its key label, serial, chain and expiry) if it is
	// still at the certificate replaced; it reports whether it moved it.
	SwitchCredential(ctx context.Context, id, replaced string, c CredentialRecord) (bool, error)
	// IssuedCertificate returns the current (newest) issued certificate of
	// credential credentialID, or ErrNotFound.
	IssuedCertificate(ctx context.Context, credentialID string) (*IssuedCertificate, error)
	// CertificateRevoked reports whether the certificate with that serial
	// (lower-case hex) is revoked. It is asked on every use of a
	// credential, so revocations recorded by another instance count.
	CertificateRevoked(ctx context.Context, serial string) (bool, error)
}

// SADStore keeps signature activation data, by a hash of the SAD value.
type SADStore interface {
	// InsertSAD records the authorisation a under the value sad.
	InsertSAD(ctx context.Context, sad string, a SAD) error
	// ConsumeSAD marks the SAD used and returns what it authorised; it
	// succeeds once, for an unexpired SAD of that credential, and returns
	// an error wrapping ErrNotFound otherwise.
	ConsumeSAD(ctx context.Context, sad, credentialID string, now time.Time) (*SAD, error)
	// DeleteExpiredSADs removes the SADs that expired before cutoff.
	DeleteExpiredSADs(ctx context.Context, cutoff time.Time) (int64, error)
}

// Store is all the service keeps: credentials, the citizens' signing PINs
// (package pin) and SADs.
type Store interface {
	CredentialStore
	SADStore
	pin.Store
}

// KeyResolver returns the private key labelled label on the token, for a
// credential of certificate profile profile. The resolver may tune the key
// for its use (an organisation's seal key signs all day) and name it by the
// profile in its metrics, never by the label (a credential ID).
type KeyResolver func(ctx context.Context, label, profile string) (crypto.Signer, error)

// Auditor appends to the audit log (internal/audit.Log implements it).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
	// Prepare returns the Sealer of entries, which the store commits in
	// the transaction of the change they record (a PIN set, changed,
	// reset or activated).
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}
