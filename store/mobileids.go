package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/signing"
)

// MobileIDState is an enrolled mobile ID with its login PIN's state and
// its current certificate (the newest issued for the credential: renewal
// and re-key keep the credential ID).
type MobileIDState struct {
	CredentialID, CivilNumber string
	PINSet                    bool
	PINFailures               int
	ActivationPending         bool
	// CertSerial, NotAfter and Revoked describe the current certificate
	// ("" when there is none).
	CertSerial string
	NotAfter   time.Time
	Revoked    bool
	// Certificate is the current certificate (nil when there is none):
	// its serialNumber names the number's country, which CivilNumber
	// does not.
	Certificate *x509.Certificate
}

// mobileIDSelect reads MobileIDState rows, in scanMobileID's order.
const mobileIDSelect = `SELECT m.credential_id, m.civil_number, m.pin_hash IS NOT NULL, m.pin_failures, m.activation_hash IS NOT NULL,
	c.serial, c.not_after, r.serial IS NOT NULL, c.der
	FROM oidc_mobile_ids m
	LEFT JOIN certificates c ON c.serial = (SELECT cc.serial FROM certificates cc
		WHERE cc.credential_id = m.credential_id AND cc.state = 'issued' ORDER BY cc.issued_at DESC, cc.serial LIMIT 1)
	LEFT JOIN revocations r ON r.serial = c.serial`

func scanMobileID(sc interface{ Scan(...any) error }) (*MobileIDState, error) {
	var m MobileIDState
	var failures int64
	var serial sql.NullString
	var notAfter sql.NullInt64
	var revoked sql.NullBool
	var der []byte
	if err := sc.Scan(&m.CredentialID, &m.CivilNumber, &m.PINSet, &failures, &m.ActivationPending, &serial, &notAfter, &revoked, &der); err != nil {
		return nil, err
	}
	if len(der) > 0 {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %s of mobile ID %s: %w", serial.String, m.CredentialID, err)
		}
		m.Certificate = cert
	}
	m.PINFailures, m.CertSerial, m.Revoked = int(failures), serial.String, revoked.Bool
	if notAfter.Valid {
		m.NotAfter = time.Unix(notAfter.Int64, 0).UTC()
	}
	return &m, nil
}

// MobileID returns the enrolled mobile ID credentialID, or an error
// wrapping identity.ErrNotFound.
func (s *Identity) MobileID(ctx context.Context, credentialID string) (*MobileIDState, error) {
	m, err := scanMobileID(s.db.queryRow(ctx, mobileIDSelect+` WHERE m.credential_id = ?`, credentialID))
	if err != nil {
		return nil, idErr("store: mobile ID "+credentialID, err)
	}
	return m, nil
}

// MobileIDsOf lists a citizen's enrolled mobile IDs, oldest first.
func (s *Identity) MobileIDsOf(ctx context.Context, civilNumber string) ([]MobileIDState, error) {
	rows, err := s.db.query(ctx, mobileIDSelect+` WHERE m.civil_number = ? ORDER BY m.enrolled_at, m.credential_id`, civilNumber)
	if err != nil {
		return nil, idErr("store: mobile IDs of a citizen", err)
	}
	defer rows.Close()
	var out []MobileIDState
	for rows.Next() {
		m, err := scanMobileID(rows)
		if err != nil {
			return nil, idErr("store: mobile IDs of a citizen", err)
		}
		out = append(out, *m)
	}
	return out, idErr("store: mobile IDs of a citizen", rows.Err())
}

// MobileIDPINSet reports whether the enrolled credential's login PIN is
// set (identity.MobileIDStore); false for a credential not enrolled.
func (s *Identity) MobileIDPINSet(ctx context.Context, credentialID string) (bool, error) {
	m, err := s.MobileID(ctx, credentialID)
	if errors.Is(err, identity.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: mobile ID %s: %w", credentialID, err)
	}
	return m.PINSet, nil
}

// SigningMobileIDs is the identity store's mobile IDs as the signing
// service's credential endpoints see them (signing.MobileIDs): the PIN life
// cycle and the listing of a citizen's credentials cover mobile IDs too.
type SigningMobileIDs struct{ ids *Identity }

var _ signing.MobileIDs = SigningMobileIDs{}

// SigningMobileIDs returns the signing service's view of the mobile IDs.
func (db *DB) SigningMobileIDs() SigningMobileIDs { return SigningMobileIDs{ids: db.Identity()} }

// MobileID returns an enrolled mobile ID, or an error wrapping
// signing.ErrNotFound (and identity.ErrNotFound).
func (m SigningMobileIDs) MobileID(ctx context.Context, credentialID string) (*signing.MobileID, error) {
	st, err := m.ids.MobileID(ctx, credentialID)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", signing.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := st.forSigning()
	return &out, nil
}

// MobileIDsOf lists a citizen's enrolled mobile IDs, oldest first.
func (m SigningMobileIDs) MobileIDsOf(ctx context.Context, civilNumber string) ([]signing.MobileID, error) {
	sts, err := m.ids.MobileIDsOf(ctx, civilNumber)
	if err != nil {
		return nil, err
	}
	out := make([]signing.MobileID, len(sts))
	for i, st := range sts {
		out[i] = st.forSigning()
	}
	return out, nil
}

// forSigning is the state as the signing service sees it.
func (st MobileIDState) forSigning() signing.MobileID {
	return signing.MobileID{CredentialID: st.CredentialID, CivilNumber: st.CivilNumber, CertSerial: st.CertSerial, NotAfter: st.NotAfter,
		Revoked: st.Revoked, Certificate: st.Certificate, PINSet: st.PINSet, PINFailures: st.PINFailures, ActivationPending: st.ActivationPending}
}
