package identity

import (
	"context"
	"errors"
	"fmt"
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

// lockSeen is a PINManager that remembers the lock record it was given
// and answers err.
type lockSeen struct {
	err  error
	lock *audit.Sealer
}

func (p lockSeen) CheckRecorded(_ context.Context, _, _ string, lock audit.Sealer) error {
	*p.lock = lock
	return p.err
}

func (p lockSeen) Params() pin.Params { return pin.DefaultParams() }

// preparedEntries is a Preparer that keeps the entries it prepares.
type preparedEntries struct{ entries *[]audit.Entry }

func (p preparedEntries) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	*p.entries = append(*p.entries, entries...)
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) { return nil, nil }), nil
}

// TestLoginPINLockRecorded: a login PIN check hands the PIN manager the
// credential.pin.locked record of the citizen's credential, and a lock
// whose record could not be written is a failure, never a wrong PIN or a
// locked one.
func TestLoginPINLockRecorded(t *testing.T) {
	var lock audit.Sealer
	var entries []audit.Entry
	unrecorded := fmt.Errorf("%w: database down", pin.ErrLockUnrecorded)
	err := LoginPINs{Manager: lockSeen{err: unrecorded, lock: &lock}, Audit: preparedEntries{&entries}}.CheckPIN(context.Background(), "cred-1", "12345678", "1234")
	if !errors.Is(err, pin.ErrLockUnrecorded) || errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrPINLocked) {
		t.Fatalf("an unrecorded lock: %v", err)
	}
	if lock == nil || len(entries) != 1 || entries[0].Action != ActionPINLocked || entries[0].Object != "cred-1" || entries[0].Actor != "citizen:12345678" {
		t.Fatalf("lock record %v, entries %+v", lock, entries)
	}
}
