package signing

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/internal/pin"
)

// TestActivationProblemTypes: a wrong activation code with tries left, the
// wrong code that used the last one, an expired code, a locked PIN, a
// wrong PIN and a PIN against the policy each get their problem type, at the status Classify gives them (unchanged: 403, 403,
// 410). The last wrong try had the type of any wrong code, so a page told
// the citizen to check the code and try again, though it no longer works.
func TestActivationProblemTypes(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		typ    string
	}{
		{fmt.Errorf("activating: %w", &pin.WrongCodeError{Remaining: 4}), http.StatusForbidden, ProblemWrongActivationCode},
		{fmt.Errorf("activating: %w", &pin.WrongCodeError{Remaining: 0}), http.StatusForbidden, ProblemActivationCodeVoid},
		{fmt.Errorf("activating: %w", pin.ErrActivationExpired), http.StatusGone, ProblemActivationCodeExpired},
		{fmt.Errorf("activating: %w", pin.ErrNoActivation), http.StatusConflict, ""},
		{fmt.Errorf("activating: %w", pin.ErrLocked), http.StatusLocked, ProblemPINLocked},
		{fmt.Errorf("signing: %w", &pin.WrongError{Remaining: 2}), http.StatusForbidden, ProblemWrongPIN},
		{fmt.Errorf("signing: %w", &pin.WrongError{Remaining: 0}), http.StatusLocked, ProblemPINLocked},
		{fmt.Errorf("changing: %w: at least 6 digits", pin.ErrPolicy), http.StatusBadRequest, ProblemPINPolicy},
		{fmt.Errorf("signing: %w", ErrCredentialRefused), http.StatusForbidden, ""},
	} {
		status, _, _ := Classify(c.err)
		if status != c.status {
			t.Errorf("%v: status %d, want %d", c.err, status, c.status)
		}
		if got := problemTypeOf(status, c.err); got != c.typ {
			t.Errorf("%v: type %q, want %q", c.err, got, c.typ)
		}
	}
}
