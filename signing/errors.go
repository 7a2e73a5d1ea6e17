package signing

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/thiqa/thiqa/internal/pin"
)

// The refusals of the service, for errors.Is. Each one is answered with its
// own HTTP status by Classify, the one mapping of the service's errors; the
// CSC endpoints (signing/csc) build their error bodies on it.
var (
	// ErrBadRequest: the request is malformed or asks for something the
	// service does not do.
	ErrBadRequest = errors.New("bad request")
	// ErrUnsupportedMediaType: the body is not of the media type the
	// endpoint takes.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrTooLarge: the document or the batch exceeds the configured bounds.
	ErrTooLarge = errors.New("request too large")
	// ErrActivationRequired: the PIN or the SAD that activates a citizen's
	// key is missing.
	ErrActivationRequired = errors.New("activation data required")
	// ErrNoIdentity: the caller has no identity of the kind the operation
	// needs (an agency's organizationIdentifier, a citizen's civil number).
	ErrNoIdentity = errors.New("the caller has no identity for this operation")
	// ErrCredentialRefused is returned for a credential that does not exist,
	// is not a signing credential, or belongs to someone else: callers
	// cannot tell which, so credential IDs cannot be probed.
	ErrCredentialRefused = errors.New("credential not found or not yours")
	// ErrCertificateNotValid: the credential's certificate is outside its
	// validity period.
	ErrCertificateNotValid = errors.New("certificate not valid now")
	// ErrCertificateRevoked: the credential's certificate is revoked.
	ErrCertificateRevoked = errors.New("certificate revoked")
	// ErrSADInvalid: the SAD is unknown, expired, already used or for
	// another credential (callers need not know which).
	ErrSADInvalid = errors.New("the SAD is invalid, expired, already used or for another credential")
	// ErrSADMismatch: the SAD does not authorise the hashes presented (a
	// *SADError says why).
	ErrSADMismatch = errors.New("the SAD does not authorise these hashes")
	// ErrAudit marks a failure to write the audit record of an operation:
	// nothing was sent.
	ErrAudit = errors.New("audit record could not be written")
	// ErrOutOfScope: the caller's delegated access token does not allow
	// the operation (a "credential" token signs its own hashes only).
	ErrOutOfScope = errors.New("the access token's scope does not allow this operation")
	// ErrFirstPINActivation: the deployment sets the first PIN of a
	// credential with an activation code only
	// (signing.pinPolicy.firstPINActivation), not with the bearer token
	// alone.
	ErrFirstPINActivation = errors.New("the first signing PIN needs an activation code")
)

// ProblemFirstPINActivation is the problem type of the refusal of a first
// PIN set with the bearer token alone (ErrFirstPINActivation, 409), so
// that a client can tell the citizen, in their language, to set it with
// an activation code.
const ProblemFirstPINActivation = "urn:thiqa:problem:first-pin-needs-activation-code"

// ProblemWrongActivationCode is the problem type of an activation code
// that is not the credential's (403); the detail says how many tries are
// left, or that the code is now void.
const ProblemWrongActivationCode = "urn:thiqa:problem:wrong-activation-code"

// ProblemActivationCodeVoid is the problem type of the wrong activation
// code that used the last try (403, as every wrong code): the code no
// longer works, whatever is typed next; a registration officer issues a
// new one.
const ProblemActivationCodeVoid = "urn:thiqa:problem:activation-code-void"

// ProblemActivationCodeExpired is the problem type of an activation code
// past its lifetime (410): a registration officer issues a new one.
const ProblemActivationCodeExpired = "urn:thiqa:problem:activation-code-expired"

// ProblemPINLocked is the problem type of a signing PIN locked after too
// many wrong tries (423): a registration officer resets it.
const ProblemPINLocked = "urn:thiqa:problem:pin-locked"

// ProblemWrongPIN is the problem type of a wrong signing PIN with tries
// left (403); the detail says how many.
const ProblemWrongPIN = "urn:thiqa:problem:wrong-pin"

// ProblemPINPolicy is the problem type of a new PIN that does not meet
// the PIN policy (400); the detail says what it asks.
const ProblemPINPolicy = "urn:thiqa:problem:pin-policy"

// problemTypeOf is the problem type of the answer status to err (as
// Classify gives it): the PIN's and the activation code's refusals, so
// that a page can tell the citizen in their language what to do without
// reading the English detail; "" for any other answer. A wrong activation
// code that used the last try is ProblemActivationCodeVoid, a wrong PIN
// that used the last one ProblemPINLocked.
func problemTypeOf(status int, err error) string {
	switch {
	case status == http.StatusConflict && errors.Is(err, ErrFirstPINActivation):
		return ProblemFirstPINActivation
	case status == http.StatusForbidden && errors.Is(err, pin.ErrWrongCode) && errors.Is(err, pin.ErrNoActivation):
		return ProblemActivationCodeVoid
	case status == http.StatusForbidden && errors.Is(err, pin.ErrWrongCode):
		return ProblemWrongActivationCode
	case status == http.StatusGone && errors.Is(err, pin.ErrActivationExpired):
		return ProblemActivationCodeExpired
	case status == http.StatusLocked && errors.Is(err, pin.ErrLocked):
		return ProblemPINLocked
	case status == http.StatusForbidden && errors.Is(err, pin.ErrWrong):
		return ProblemWrongPIN
	case status == http.StatusBadRequest && errors.Is(err, pin.ErrPolicy):
		return ProblemPINPolicy
	}
	return ""
}

// Refusal is a request the service declines, with the reason in words for
// the caller. errors.Is(err, Kind) holds: the kind (one of the sentinels
// above) decides the answer, Reason is its detail.
type Refusal struct {
	// Kind is the sentinel the refusal is an instance of.
	Kind error
	// Reason says what was wrong, for the caller and the audit record.
	Reason string
}

// Error implements the error interface: the reason alone.
func (r *Refusal) Error() string { return r.Reason }

// Unwrap returns the kind.
func (r *Refusal) Unwrap() error { return r.Kind }

// Refuse returns a *Refusal of kind with a formatted reason.
func Refuse(kind error, format string, args ...any) error {
	return &Refusal{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// SADError says why a SAD does not authorise the hashes presented;
// errors.Is(err, ErrSADMismatch) holds.
type SADError struct {
	// Reason is what differs (the algorithm, the count, a hash).
	Reason string
}

// Error implements the error interface.
func (e *SADError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrSADMismatch) true.
func (e *SADError) Is(target error) bool { return target == ErrSADMismatch }

// auditFailed wraps the error of an audit append: the operation is
// refused as a failure and nothing is sent.
func auditFailed(err error) error { return fmt.Errorf("%w: %w", ErrAudit, err) }

// refusalUnrecorded is the error of a refusal or failure err whose audit
// record could not be written (aerr): no refusal leaves without its
// record, so it is a failure of the service (ErrAudit), and no longer
// err's kind; err's text is kept for the logs.
func refusalUnrecorded(err, aerr error) error {
	return fmt.Errorf("%w: %w (unrecorded: %v)", ErrAudit, aerr, err)
}
