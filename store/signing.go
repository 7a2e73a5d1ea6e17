package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
)

// SigningCredentials is the signing service's store (signing.Store):
// signing credentials, the citizens' signing PINs (package pin, in the
// credentials table) and SADs, and what it reads of the CA's certificates
// and revocations.
type SigningCredentials struct{ db *DB }

var _ signing.Store = (*SigningCredentials)(nil)

// signErr maps the store's ErrNotFound onto package signing's.
func signErr(what string, err error) error {
	err = mapErr(what, err)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", signing.ErrNotFound, err)
	}
	return err
}

// SigningCredentials returns the signing service's store.
func (db *DB) SigningCredentials() *SigningCredentials { return &SigningCredentials{db: db} }

const credColumns = `id, owner_kind, owner_id, profile, key_label, cert_serial, chain_der, not_after, pin_hash IS NOT NULL, pin_failures, created_at,
	activation_hash IS NOT NULL`

func scanCredential(sc interface{ Scan(...any) error }) (*signing.CredentialRecord, error) {
	var c signing.CredentialRecord
	var na, ca, failures int64
	if err := sc.Scan(&c.ID, &c.OwnerKind, &c.OwnerID, &c.Profile, &c.KeyLabel, &c.CertSerial, &c.ChainDER, &na, &c.PINSet, &failures, &ca, &c.ActivationPending); err != nil {
		return nil, err
	}
	c.NotAfter, c.CreatedAt, c.PINFailures = time.Unix(0, na).UTC(), time.Unix(0, ca).UTC(), int(failures)
	return &c, nil
}

// RegisterCredential records c unless a credential with its ID exists; it
// returns the stored credential either way (the first registration wins).
func (s *SigningCredentials) RegisterCredential(ctx context.Context, c signing.CredentialRecord) (*signing.CredentialRecord, error) {
	if c.ID == "" || c.OwnerID == "" || (c.OwnerKind != signing.OwnerAgency && c.OwnerKind != signing.OwnerCitizen) || len(c.ChainDER) == 0 {
		return nil, errors.New("store: credential needs an ID, an owner and a certificate chain")
	}
	err := s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO signing_credentials (id, owner_kind, owner_id, profile, key_label, cert_serial, chain_der, not_after, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.OwnerKind, c.OwnerID, c.Profile, c.KeyLabel, c.CertSerial, c.ChainDER, c.NotAfter.UnixNano(), time.Now().UnixNano())
		return mapErr("store: registering credential "+c.ID, err)
	})
	if err != nil {
		return nil, err
	}
	return s.Credential(ctx, c.ID)
}

// Credential returns the credential with that ID (an error wrapping
// ErrNotFound and signing.ErrNotFound otherwise).
func (s *SigningCredentials) Credential(ctx context.Context, id string) (*signing.CredentialRecord, error) {
	c, err := scanCredential(s.db.queryRow(ctx, `SELECT `+credColumns+` FROM signing_credentials WHERE id = ?`, id))
	if err != nil {
		return nil, signErr("store: reading credential "+id, err)
	}
	return c, nil
}

// CredentialsOf lists an owner's credentials, oldest first.
func (s *SigningCredentials) CredentialsOf(ctx context.Context, kind, owner string) ([]*signing.CredentialRecord, error) {
	rows, err := s.db.query(ctx, `SELECT `+credColumns+` FROM signing_credentials WHERE owner_kind = ? AND owner_id = ? ORDER BY created_at, id`, kind, owner)
	if err != nil {
		return nil, mapErr("store: listing credentials", err)
	}
	defer rows.Close()
	var out []*signing.CredentialRecord
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, mapErr("store: reading credential", err)
		}
		out = append(out, c)
	}
	return out, mapErr("store: listing credentials", rows.Err())
}

// UnregisteredCredentials returns up to limit issued certificates whose
// credential is not yet in signing_credentials, so that the signing service
// can register them (it reads the owner from the certificate itself).
func (s *SigningCredentials) UnregisteredCredentials(ctx context.Context, limit int) ([]signing.IssuedCertificate, error) {
	rows, err := s.db.query(ctx, `SELECT c.credential_id, c.ca, c.profile, c.serial, c.der FROM certificates c
	WHERE c.credential_id IS NOT NULL AND c.state = 'issued'
	AND NOT EXISTS (SELECT 1 FROM signing_credentials s WHERE s.id = c.credential_id)
	ORDER BY c.created_at LIMIT ?`, limit)
	if err != nil {
		return nil, mapErr("store: listing unregistered credentials", err)
	}
	defer rows.Close()
	var out []signing.IssuedCertificate
	for rows.Next() {
		var u signing.IssuedCertificate
		if err := rows.Scan(&u.CredentialID, &u.CA, &u.Profile, &u.Serial, &u.DER); err != nil {
			return nil, mapErr("store: reading unregistered credential", err)
		}
		out = append(out, u)
	}
	return out, mapErr("store: listing unregistered credentials", rows.Err())
}

// IssuedCertificate returns the issued certificate of the key credentialID
// generated on the token (certificates.credential_id), or an error wrapping
// signing.ErrNotFound.
func (s *SigningCredentials) IssuedCertificate(ctx context.Context, credentialID string) (*signing.IssuedCertificate, error) {
	ic := signing.IssuedCertificate{CredentialID: credentialID}
	err := s.db.queryRow(ctx, `SELECT ca, profile, serial, der, COALESCE(key_label, credential_id) FROM certificates
	WHERE credential_id = ? AND state = 'issued' ORDER BY issued_at DESC, serial LIMIT 1`, credentialID).
		Scan(&ic.CA, &ic.Profile, &ic.Serial, &ic.DER, &ic.KeyLabel)
	if err != nil {
		return nil, signErr("store: reading the certificate of credential "+credentialID, err)
	}
	return &ic, nil
}

// SwitchCredential moves credential id to its renewed or re-keyed
// certificate if it is still at the certificate replaced (a renewal that
// completes twice moves it once; an older one never moves it back).
func (s *SigningCredentials) SwitchCredential(ctx context.Context, id, replaced string, c signing.CredentialRecord) (bool, error) {
	var n int64
	err := s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE signing_credentials SET key_label = ?, cert_serial = ?, chain_der = ?, not_after = ?
	WHERE id = ? AND cert_serial = ?`, c.KeyLabel, c.CertSerial, c.ChainDER, c.NotAfter.UnixNano(), id, replaced)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, mapErr("store: switching credential "+id, err)
	}
	return n == 1, nil
}

// CertificateRevoked reports whether the certificate with that serial
// (lower-case hex) has a revocation recorded.
func (s *SigningCredentials) CertificateRevoked(ctx context.Context, serial string) (bool, error) {
	key, err := revocation.NormalizeSerial(serial)
	if err != nil {
		return false, nil // no such serial was ever revoked
	}
	var one int
	err = s.db.queryRow(ctx, `SELECT 1 FROM revocations WHERE serial = ?`, key).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, mapErr("store: reading the revocation of "+serial, err)
	}
	return true, nil
}

// CreatePIN implements pin.Store: it sets the PIN hash of credential subject
// when none is set.
func (s *SigningCredentials) CreatePIN(ctx context.Context, subject, hash string, seal audit.Sealer) (bool, error) {
	return s.pins().CreatePIN(ctx, subject, hash, seal)
}

// AttemptPIN implements pin.Store: the try is counted before the hash is checked.
func (s *SigningCredentials) AttemptPIN(ctx context.Context, subject string, limit int) (pin.State, bool, error) {
	return s.pins().AttemptPIN(ctx, subject, limit)
}

// LockPIN implements pin.Store: the record of a signing PIN's lock.
func (s *SigningCredentials) LockPIN(ctx context.Context, subject, hash string, limit int, seal audit.Sealer) (bool, error) {
	return s.pins().LockPIN(ctx, subject, hash, limit, seal)
}

// ResetPINFailures implements pin.Store.
func (s *SigningCredentials) ResetPINFailures(ctx context.Context, subject string) error {
	return s.pins().ResetPINFailures(ctx, subject)
}

// pins keeps the signing PINs of credentials.
func (s *SigningCredentials) pins() pinRows {
	return newPinRows(s.db, "signing_credentials", "id", "PIN", true)
}

// SADKey is what the store keeps of a SAD value: its SHA-256.
func SADKey(sad string) []byte {
	h := sha256.Sum256([]byte(sad))
	return h[:]
}

func encodeHashes(hs [][]byte) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = base64.StdEncoding.EncodeToString(h)
	}
	return strings.Join(parts, ",")
}

func decodeHashes(s string) ([][]byte, error) {
	var out [][]byte
	for _, p := range strings.Split(s, ",") {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("store: stored SAD hashes: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

// InsertSAD records the authorisation a (keyed by SADKey(sad)).
func (s *SigningCredentials) InsertSAD(ctx context.Context, sad string, a signing.SAD) error {
	if len(a.Hashes) == 0 || a.NumSignatures < 1 {
		return errors.New("store: a SAD needs hashes")
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO signing_sads (sad_hash, credential_id, hash_alg, hashes, num_signatures, expires_at, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`, SADKey(sad), a.CredentialID, a.HashAlg, encodeHashes(a.Hashes), a.NumSignatures, a.ExpiresAt.UnixNano(), time.Now().UnixNano())
		return mapErr("store: recording SAD", err)
	})
}

// ConsumeSAD marks the SAD used and returns what it authorised, in one
// conditional UPDATE: it succeeds once, for an unexpired SAD of that
// credential. Otherwise it returns an error wrapping ErrNotFound and
// signing.ErrNotFound (unknown, already used, expired or for another
// credential: callers need not know which).
func (s *SigningCredentials) ConsumeSAD(ctx context.Context, sad, credentialID string, now time.Time) (*signing.SAD, error) {
	var a signing.SAD
	err := s.db.writeTx(ctx, func(t *txn) error {
		var hashes string
		var n, exp int64
		err := t.queryRow(ctx, `UPDATE signing_sads SET used_at = ? WHERE sad_hash = ? AND credential_id = ? AND used_at IS NULL AND expires_at > ?
	RETURNING credential_id, hash_alg, hashes, num_signatures, expires_at`, now.UnixNano(), SADKey(sad), credentialID, now.UnixNano()).
			Scan(&a.CredentialID, &a.HashAlg, &hashes, &n, &exp)
		if err != nil {
			return signErr("store: consuming SAD", err)
		}
		a.NumSignatures, a.ExpiresAt = int(n), time.Unix(0, exp).UTC()
		a.Hashes, err = decodeHashes(hashes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// DeleteExpiredSADs removes SADs that expired before cutoff, in batches of
// a bounded number of rows (purgeBatches), and returns how many went.
func (s *SigningCredentials) DeleteExpiredSADs(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.db.purgeBatches(ctx, "signing_sads", "sad_hash", `expires_at < ?`, cutoff.UnixNano())
	if err != nil {
		return n, fmt.Errorf("store: deleting expired SADs: %w", err)
	}
	return n, nil
}
