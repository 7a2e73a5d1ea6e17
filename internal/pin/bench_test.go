package pin_test

import (
	"context"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// benchManager returns a manager at the default (production) cost over a
// memory store with cred-1's PIN set.
func benchManager(b *testing.B) (*pin.Manager, context.Context) {
	b.Helper()
	ctx := context.Background()
	m, err := pin.New(pin.NewMemoryStore(), pin.DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Set(ctx, "cred-1", "482916"); err != nil {
		b.Fatal(err)
	}
	return m, ctx
}

// BenchmarkCheckRightPIN measures a right PIN's check (the hot path of
// every signature) without a lock record.
func BenchmarkCheckRightPIN(b *testing.B) {
	m, ctx := benchManager(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Check(ctx, "cred-1", "482916"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckRightPINRecorded measures it as the signing service and
// the mobile-ID login run it: the lock record prepared before every check
// (audit.Log.Prepare), committed only by the try that locks the PIN.
func BenchmarkCheckRightPINRecorded(b *testing.B) {
	m, ctx := benchManager(b)
	log := audit.New(nil, nil, nil, audit.Options{})
	b.Cleanup(log.Close)
	b.ReportAllocs()
	for b.Loop() {
		lock, err := log.Prepare(audit.Entry{Actor: "12345678", Action: "credential.pin.locked", Object: "cred-1", Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"kind": "signing", "owner": "12345678", "maxFailures": m.Params().MaxFailures}})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.CheckRecorded(ctx, "cred-1", "482916", lock); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareLockRecord measures the record's preparation alone.
func BenchmarkPrepareLockRecord(b *testing.B) {
	log := audit.New(nil, nil, nil, audit.Options{})
	b.Cleanup(log.Close)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := log.Prepare(audit.Entry{Actor: "12345678", Action: "credential.pin.locked", Object: "cred-1", Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"kind": "signing", "owner": "12345678", "maxFailures": 5}}); err != nil {
			b.Fatal(err)
		}
	}
}
