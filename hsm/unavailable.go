package hsm

import (
	"context"
	"errors"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/outage"
)

// Errors of a token that cannot be used for now are marked for the
// services (outage.Mark): the device reports an error or is out of memory
// or sessions, the token is gone (removed, a network HSM unreachable) and
// recovering from it failed, a session or login fault outlived every
// recovery, or no session became free before the caller's deadline. The
// services answer them "try again later" (HTTP 503, OCSP tryLater) instead
// of as an internal error. Errors that a retry cannot cure keep their
// answers unmarked: a key not found, a mechanism or data refused, a PIN
// refused or locked, a closed Token.

// transientRV reports whether the module's return value rv says the device
// cannot serve now but may again later, without any state of ours to
// rebuild (faultReason covers those).
func transientRV(rv uint) bool {
	switch rv {
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_SESSION_COUNT:
		return true
	}
	return false
}

// markTransient marks err when the module said the device is unavailable
// for now (transientRV).
func markTransient(err error) error {
	var e pkcs11.Error
	if errors.As(err, &e) && transientRV(uint(e)) {
		return outage.Mark(err)
	}
	return err
}

// markRecoveryFailed marks err, a token fault whose recovery failed with
// rerr, unless rerr cannot pass by itself: the PIN refused or locked (the
// operator must act; the Token will not try the PIN again), the PIN
// expired or never set, or the Token closed.
func markRecoveryFailed(err, rerr error) error {
	if errors.Is(rerr, ErrPINIncorrect) || errors.Is(rerr, ErrPINLocked) || errors.Is(rerr, ErrClosed) ||
		isRV(rerr, pkcs11.CKR_PIN_EXPIRED) || isRV(rerr, pkcs11.CKR_USER_PIN_NOT_INITIALIZED) {
		return err
	}
	return outage.Mark(err)
}

// markDeadline marks err when the caller's deadline ended the operation
// before the token served it: waiting for a free session (every session
// busy, e.g. in calls to a device that stopped answering) or recovering
// from a fault. A cancelled operation (the caller left) is not marked.
func markDeadline(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return outage.Mark(err)
	}
	return err
}
