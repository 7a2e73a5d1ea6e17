package revocation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/ca/crl"
)

// Reason is an RFC 5280 CRLReason code.
type Reason int

// The reasons a revocation may give. certificateHold (6) is absent:
// revocation is final here.
const (
	Unspecified          Reason = crl.ReasonUnspecified
	KeyCompromise        Reason = crl.ReasonKeyCompromise
	CACompromise         Reason = crl.ReasonCACompromise
	AffiliationChanged   Reason = crl.ReasonAffiliationChanged
	Superseded           Reason = crl.ReasonSuperseded
	CessationOfOperation Reason = crl.ReasonCessationOfOperation
	PrivilegeWithdrawn   Reason = crl.ReasonPrivilegeWithdrawn
)

// reasonNames are the RFC 5280 names, in code order.
var reasonNames = []struct {
	r    Reason
	name string
}{
	{Unspecified, "unspecified"},
	{KeyCompromise, "keyCompromise"},
	{CACompromise, "caCompromise"},
	{AffiliationChanged, "affiliationChanged"},
	{Superseded, "superseded"},
	{CessationOfOperation, "cessationOfOperation"},
	{PrivilegeWithdrawn, "privilegeWithdrawn"},
}

// String returns the RFC 5280 name ("keyCompromise"), or "reason-N" for a
// code that is not one a revocation may give.
func (r Reason) String() string {
	for _, n := range reasonNames {
		if n.r == r {
			return n.name
		}
	}
	return fmt.Sprintf("reason-%d", int(r))
}

// ErrBadReason is wrapped by the error of ParseReason: the reason is not
// one a revocation may give.
var ErrBadReason = errors.New("unknown revocation reason")

// ParseReason maps an RFC 5280 reason name to its code. Only the reasons
// a revocation may give are accepted; any other is an error wrapping
// ErrBadReason.
func ParseReason(s string) (Reason, error) {
	for _, n := range reasonNames {
		if n.name == s {
			return n.r, nil
		}
	}
	names := make([]string, len(reasonNames))
	for i, n := range reasonNames {
		names[i] = n.name
	}
	return 0, fmt.Errorf("%w %q (want %s)", ErrBadReason, s, strings.Join(names, ", "))
}
