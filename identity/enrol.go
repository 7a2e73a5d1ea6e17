package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
)

// ActionEnrolMobile is the audit action of a mobile ID enrolment.
const ActionEnrolMobile = "oidc.mobile.enrol"

// ErrOtherCountry refuses a mobile-ID enrolment whose certificate names a
// national identity number of another country than the deployment's
// (Enrolment.Country).
var ErrOtherCountry = errors.New("national identity number of another country")

// IssuedCredential is the certificate the CA issued for a key on the
// service's token (a keyInHSM certificate), named by its credential ID.
type IssuedCredential struct {
	Certificate *x509.Certificate
	// Profile is the certificate profile it was issued under; Serial its
	// serial (lower-case hex).
	Profile, Serial string
}

// Credentials finds the certificate issued for a credential (the identity
// store implements it: store.Identity).
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
	// MobileIDPINSet reports whether the enrolled credential's login PIN
	// is set (false too for a credential not enrolled).
	MobileIDPINSet(ctx context.Context, credentialID string) (bool, error)
}

// PINSetter sets a credential's login PIN, or issues the activation code
// with which the citizen sets it, committing the audit records of the
// enrolment in the same transaction (*pin.Manager).
type PINSetter interface {
	Params() pin.Params
	SetRecorded(ctx context.Context, subject, pin string, seal audit.Sealer) error
	ResetRecordedWith(ctx context.Context, subject string, record func(pin.Activation) (audit.Sealer, error)) (pin.Activation, error)
}

// Enrolment is what enrolling a mobile ID needs. Audit prepares the
// enrolment's record, which the store commits with the login PIN or the
// activation code.
type Enrolment struct {
	Credentials Credentials
	Status      StatusChecker
	Store       MobileIDStore
	PINs        PINSetter
	Audit       Preparer
	// Country is the deployment's country (ISO 3166 alpha-2, e.g. OM): a
	// certificate whose serialNumber is IDC<another country>-<number> is
	// refused, since its mobile ID could never log in here. Empty when not
	// known: a number of any country is enrolled (as before).
	Country string
}

// EnrolMobileID activates a citizen's remote authentication credential
// (a citizen-auth certificate issued with its key on the token) as mobile
// ID with a login PIN chosen by actor, on behalf of the citizen: the
// certificate must be issued, unexpired and unrevoked, and name a civil
// number; the PIN must meet the policy. It records the enrolment and sets
// the PIN with its record (oidc.mobile.enrol) in one transaction, and
// returns the civil number: when the record cannot be written no PIN is
// set, the mobile ID cannot be used, and enrolling again completes it. An enrolment left
// without a PIN (interrupted) is completed; one with a PIN is refused.
// The operator then knows the citizen's PIN: it is for tests and load
// generators; EnrolMobileIDForActivation keeps sole control.
func EnrolMobileID(ctx context.Context, e Enrolment, credential, loginPIN, actor string) (string, error) {
	if err := e.PINs.Params().CheckPolicy(loginPIN); err != nil {
		return "", fmt.Errorf("the login PIN: %w", err)
	}
	civil, serial, err := enrol(ctx, e, credential)
	if err != nil {
		return "", err
	}
	seal, err := e.Audit.Prepare(audit.Entry{Actor: actor, Action: ActionEnrolMobile, Object: credential, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"civilNumber": civil, "certSerial": serial, "pin": "set by the operator"}})
	if err != nil {
		return "", fmt.Errorf("preparing the audit record: %w", err)
	}
	if err := e.PINs.SetRecorded(ctx, credential, loginPIN, seal); err != nil {
		return "", fmt.Errorf("setting the login PIN with its audit record: %w", err)
	}
	return civil, nil
}

// EnrolMobileIDForActivation enrols credential as EnrolMobileID does, but
// without a PIN: it returns a one-time activation code (shown once, kept
// only as a hash, expiring) that the citizen redeems with a login PIN of
// their own choosing (POST /api/v1/credentials/{id}/pin/activate), so
// that no operator ever knows it. Enrolling again before the activation
// issues a new code (the earlier one stops working); a mobile ID whose PIN
// is set is refused (pin.ErrAlreadySet): an officer's PIN reset is the way.
// The code is stored with the enrolment's record in one transaction: when
// the record cannot be written no code is issued.
func EnrolMobileIDForActivation(ctx context.Context, e Enrolment, credential, actor string) (string, pin.Activation, error) {
	civil, serial, err := enrol(ctx, e, credential)
	if err != nil {
		return "", pin.Activation{}, err
	}
	if set, err := e.Store.MobileIDPINSet(ctx, credential); err != nil {
		return "", pin.Activation{}, fmt.Errorf("reading the enrolment: %w", err)
	} else if set {
		return "", pin.Activation{}, fmt.Errorf("credential %s: %w (a registration officer resets it: POST /api/v1/credentials/%s/pin/reset)", credential, pin.ErrAlreadySet, credential)
	}
	a, err := e.PINs.ResetRecordedWith(ctx, credential, func(a pin.Activation) (audit.Sealer, error) {
		seal, err := e.Audit.Prepare(audit.Entry{Actor: actor, Action: ActionEnrolMobile, Object: credential, Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"civilNumber": civil, "certSerial": serial, "pin": "activation code issued", "activationExpires": a.Expires}})
		if err != nil {
			return nil, fmt.Errorf("preparing the audit record: %w", err)
		}
		return seal, nil
	})
	if err != nil {
		return "", pin.Activation{}, fmt.Errorf("issuing the activation code with its audit record: %w", err)
	}
	return civil, a, nil
}

// enrol checks the credential's certificate and records the enrolment
// (idempotent); it returns the civil number and the certificate serial.
func enrol(ctx context.Context, e Enrolment, credential string) (civil, serial string, err error) {
	rec, err := e.Credentials.IssuedCredential(ctx, credential)
	if errors.Is(err, ErrNotFound) {
		return "", "", fmt.Errorf("credential %s: no issued certificate", credential)
	}
	if err != nil {
		return "", "", fmt.Errorf("credential %s: %w", credential, err)
	}
	if rec.Profile != ProfileCitizenAuth {
		return "", "", fmt.Errorf("credential %s has profile %s; mobile ID needs %s", credential, rec.Profile, ProfileCitizenAuth)
	}
	cert := rec.Certificate
	if time.Now().After(cert.NotAfter) {
		return "", "", fmt.Errorf("credential %s: certificate expired", credential)
	}
	st, err := e.Status.Status(ctx, cert)
	if err != nil {
		return "", "", fmt.Errorf("credential %s: %w", credential, err)
	}
	if st.Revoked {
		return "", "", fmt.Errorf("credential %s: certificate revoked", credential)
	}
	sn := cert.Subject.SerialNumber
	i := strings.IndexByte(sn, '-')
	if !strings.HasPrefix(sn, "IDC") || i < 0 {
		return "", "", fmt.Errorf("credential %s: certificate subject has no civil number", credential)
	}
	if e.Country != "" && auth.CivilNumberIn(e.Country, sn) == "" {
		return "", "", fmt.Errorf("credential %s: certificate names %s, a national identity number of another country than this deployment's (%s): "+
			"as a mobile ID it could never log in here: %w", credential, sn, e.Country, ErrOtherCountry)
	}
	civil = sn[i+1:]
	if err := e.Store.EnrolMobileID(ctx, credential, civil, time.Now()); err != nil && !errors.Is(err, ErrConflict) {
		return "", "", fmt.Errorf("recording the enrolment: %w", err)
	}
	return civil, rec.Serial, nil
}

// WriteEnrolled writes what `thiqa oidc mobile enrol` prints for a
// credential enrolled as mobile ID for the citizen with civil number
// civil: with an activation code a (EnrolMobileIDForActivation), the code,
// its expiry and where the citizen redeems it.
func WriteEnrolled(w io.Writer, credential, civil string, a *pin.Activation) error {
	if a == nil {
		_, err := fmt.Fprintf(w, "mobile ID enrolled: credential %s, civil number %s\n", credential, civil)
		return err
	}
	_, err := fmt.Fprintf(w, "mobile ID enrolled: credential %s, civil number %s\nactivation code: %s (valid until %s)\n"+
		"hand it to the citizen only; they choose their login PIN with it: POST /api/v1/credentials/%s/pin/activate\n",
		credential, civil, a.Code, a.Expires.Format(time.RFC3339), credential)
	return err
}
