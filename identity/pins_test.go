package identity

import (
	"context"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/internal/pin"
)

// pinResult is a PINManager answering err.
type pinResult struct{ err error }

func (p pinResult) Check(context.Context, string, string) error { return p.err }

func TestLoginPINs(t *testing.T) {
	failure := errors.New("database down")
	for _, tc := range []struct{ err, want error }{
		{nil, nil},
		{pin.ErrLocked, ErrPINLocked},
		{pin.ErrWrong, ErrWrongPIN},
		{pin.ErrNotSet, ErrWrongPIN},
		{failure, failure},
	} {
		if got := (LoginPINs{pinResult{tc.err}}).CheckPIN(context.Background(), "cred-1", "1234"); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
	}
}
