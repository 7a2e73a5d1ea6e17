package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// ActionEnrolMobile is the audit action of a mobile ID enrolment.
const ActionEnrolMobile = "oidc.mobile.enrol"

// IssuedCredential is the certificate the CA issued for a key on the
// service's token (a keyInHSM certificate), named by its credential ID.
type IssuedCredential struct {
	Certificate *x509.Certificate
	// Profile is the certificate profile it was issued under; Serial its
	// serial (lower-case hex).
	Profile, Serial string
}

// Credentials finds the certificate issued for a credential (cmd/thiqa
// adapts the certificate store).
type Credentials interface {
	// IssuedCredential returns the certificate issued for the key with
	// that credential ID, or an error wrapping ErrNotFound.
	IssuedCredential(ctx context.Context, credentialID string) (*IssuedCredential, error)
}

// MobileIDStore records mobile ID enrolments (package store implements it).
type MobileIDStore interface {
	// EnrolMobileID records that the credential is the civil number's
	// mobile ID; enrolling a credential twice is ErrConflict.
	EnrolMobileID(ctx context.Context, credentialID, civilNumber string, now time.Time) error
}

// PINSetter sets a credential's login PIN (*pin.Manager).
type PINSetter interface {
	Params() pin.Params
	Set(ctx context.Context, subject, pin string) error
}

// Enrolment is what enrolling a mobile ID needs.
type Enrolment struct {
	Credentials Credentials
	Status      StatusChecker
	Store       MobileIDStore
	PINs        PINSetter
	Audit       Auditor
}

// EnrolMobileID activates a citizen's remote authentication credential
// (a citizen-auth certificate issued with its key on the token) as mobile
// ID with a login PIN, on behalf of actor: the certificate must be issued,
// unexpired and unrevoked, and name a civil number. It records the
// enrolment, sets the PIN and audits it, and returns the civil number. An
// enrolment left without a PIN (interrupted) is completed; one with a PIN
// is refused.
func EnrolMobileID(ctx context.Context, e Enrolment, credential, loginPIN, actor string) (string, error) {
	rec, err := e.Credentials.IssuedCredential(ctx, credential)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("credential %s: no issued certificate", credential)
	}
	if err != nil {
		return "", fmt.Errorf("credential %s: %w", credential, err)
	}
	if rec.Profile != ProfileCitizenAuth {
		return "", fmt.Errorf("credential %s has profile %s; mobile ID needs %s", credential, rec.Profile, ProfileCitizenAuth)
	}
	cert := rec.Certificate
	if time.Now().After(cert.NotAfter) {
		return "", fmt.Errorf("credential %s: certificate expired", credential)
	}
	st, err := e.Status.CertificateStatus(ctx, cert)
	if err != nil {
		return "", fmt.Errorf("credential %s: %w", credential, err)
	}
	if st.Revoked {
		return "", fmt.Errorf("credential %s: certificate revoked", credential)
	}
	sn := cert.Subject.SerialNumber
	i := strings.IndexByte(sn, '-')
	if !strings.HasPrefix(sn, "IDC") || i < 0 {
		return "", fmt.Errorf("credential %s: certificate subject has no civil number", credential)
	}
	civil := sn[i+1:]
	params := e.PINs.Params()
	if n := utf8.RuneCountInString(loginPIN); n < params.MinLength || n > params.MaxLength {
		return "", fmt.Errorf("the login PIN must have %d to %d characters", params.MinLength, params.MaxLength)
	}
	if err := e.Store.EnrolMobileID(ctx, credential, civil, time.Now()); err != nil && !errors.Is(err, ErrConflict) {
		return "", fmt.Errorf("recording the enrolment: %w", err)
	}
	if err := e.PINs.Set(ctx, credential, loginPIN); err != nil {
		return "", fmt.Errorf("setting the login PIN: %w", err)
	}
	if _, err := e.Audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionEnrolMobile, Object: credential, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"civilNumber": civil, "certSerial": rec.Serial}}); err != nil {
		return "", fmt.Errorf("writing audit record: %w", err)
	}
	return civil, nil
}
