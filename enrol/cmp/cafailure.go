package cmp

import (
	"errors"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/policies"
)

// caFailure maps a refusal of the CA or of package enrol to a failure bit.
func caFailure(err error) *cmpError {
	var se *policies.SubjectError
	var we *ca.WeakKeyError
	var le *ca.LintError
	var re *ca.RequestError
	switch {
	case errors.Is(err, enrol.ErrUsed), errors.Is(err, enrol.ErrVoid), errors.Is(err, enrol.ErrExpired):
		return failf(NotAuthorized, "%v", err)
	case errors.Is(err, enrol.ErrBusy):
		return failf(TransactionIDInUse, "%v", err)
	case errors.Is(err, ca.ErrNotPermitted), errors.Is(err, ca.ErrNotRenewable):
		return failf(NotAuthorized, "%v", err)
	case errors.Is(err, ca.ErrAlreadyRenewed):
		return failf(DuplicateCertReq, "%v", err)
	case errors.Is(err, ca.ErrSameKey), errors.Is(err, ca.ErrCryptoPeriod), errors.Is(err, ca.ErrKeyOtherSubject):
		return failf(BadCertTemplate, "%v", err)
	case errors.As(err, new(*enrol.RequestError)):
		return failf(BadRequest, "%v", err)
	case errors.Is(err, policies.ErrUnknownProfile):
		return failf(UnacceptedPolicy, "%v", err)
	case errors.Is(err, ca.ErrBadCSR):
		return failf(BadPOP, "%v", err)
	case errors.Is(err, ca.ErrKeyBlocked):
		return failf(BadCertTemplate, "%v", err)
	case errors.Is(err, ca.ErrDuplicateRequest):
		return failf(DuplicateCertReq, "%v", err)
	case errors.Is(err, ca.ErrIssuerExpiring), errors.Is(err, ca.ErrIssuerRevoked):
		// The CA's condition until its operators roll it over, not an
		// unexpected failure; the statusString says what they must do.
		return failf(SystemUnavail, "%v", err)
	case errors.As(err, &se), errors.As(err, &we), errors.As(err, &le), errors.As(err, &re):
		return failf(BadCertTemplate, "%v", err)
	}
	return nil
}
