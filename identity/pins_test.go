package identity

import (
	"context"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// pinResult is a PINManager answering err.
type pinResult struct{ err error }

func (p pinResult) CheckRecorded(context.Context, string, string, audit.Sealer) error { return p.err }

func (p pinResult) Params() pin.Params { return pin.DefaultParams() }

func TestLoginPINs(t *testing.T) {
	failure := errors.New("database down")
	for _, tc := range []struct{ err, want error }{
		{nil, nil},
		{pin.ErrLocked, ErrPINLocked},
		{pin.ErrWrong, ErrWrongPIN},
		{pin.ErrNotSet, ErrWrongPIN},
		{failure, failure},
	} {
		if got := (LoginPINs{Manager: pinResult{tc.err}}).CheckPIN(context.Background(), "cred-1", "12345678", "1234"); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
	}
}
