package enrol_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store/storetest"
)

// fakePurger has enrolments and transactions rows left to purge, and
// records the cutoffs and limits it was asked with.
type fakePurger struct {
	mu                   sync.Mutex
	enrolments, txs      int64
	enrolCut, txCut      time.Time
	calls                int
	limits               []int
	failTransactionsOnce bool
}

func take(left *int64, limit int) int64 {
	n := min(*left, int64(limit))
	*left -= n
	return n
}

func (f *fakePurger) PurgeEnrolments(_ context.Context, cutoff time.Time, limit int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.enrolCut, f.limits = cutoff, append(f.limits, limit)
	return take(&f.enrolments, limit), nil
}

func (f *fakePurger) PurgeTransactions(_ context.Context, cutoff time.Time, limit int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failTransactionsOnce {
		f.failTransactionsOnce = false
		return 0, errors.New("database away")
	}
	f.txCut, f.limits = cutoff, append(f.limits, limit)
	return take(&f.txs, limit), nil
}

// TestPurgeBatches: a backlog goes in batches of PurgeBatch rows until a
// batch is not full; the cutoffs are the retentions before now, and a
// used enrolment outlives the transaction its secret confirms.
func TestPurgeBatches(t *testing.T) {
	if enrol.EnrolmentRetention <= enrol.TransactionRetention {
		t.Fatal("an enrolment must be kept longer than the CMP transactions it opens")
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := &fakePurger{enrolments: 2*enrol.PurgeBatch + 5, txs: 7}
	e, tx, err := enrol.Purge(t.Context(), f, now)
	if err != nil || e != 2*enrol.PurgeBatch+5 || tx != 7 {
		t.Fatalf("purged %d enrolments, %d transactions, %v", e, tx, err)
	}
	if f.calls != 4 { // 1 transactions batch, 3 enrolments batches
		t.Fatalf("%d batches, want 4", f.calls)
	}
	for _, l := range f.limits {
		if l != enrol.PurgeBatch {
			t.Fatalf("a batch of %d rows, want %d", l, enrol.PurgeBatch)
		}
	}
	if !f.enrolCut.Equal(now.Add(-enrol.EnrolmentRetention)) || !f.txCut.Equal(now.Add(-enrol.TransactionRetention)) {
		t.Fatalf("cutoffs %s, %s", f.enrolCut, f.txCut)
	}
}

// TestPurgeEvery: the loop purges on every tick, logs what went, logs a
// failure and tries again at the next tick, and returns when its context
// ends.
func TestPurgeEvery(t *testing.T) {
	f := &fakePurger{enrolments: 3, txs: 2, failTransactionsOnce: true}
	var logs testenv.SyncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		enrol.PurgeEvery(ctx, f, time.Millisecond, time.Now, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "enrolments=3 transactions=2") {
		if time.Now().After(deadline) {
			t.Fatalf("no purge logged: %s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), "database away") {
		t.Fatalf("the failure was not logged: %s", logs.String())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("PurgeEvery did not return when its context ended")
	}
}

// TestPurgeStore: through the store (SQLite and PostgreSQL), a used
// enrolment and its confirmed transaction stay within their retention,
// and go after.
func TestPurgeStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			start := time.Now().UTC().Truncate(time.Second)
			e := enrol.Enrolment{Reference: "REF", Profile: "citizen-auth", Subject: map[string]string{}, SecretHash: sha256.Sum256(nil),
				CreatedBy: "o", Created: start, Expires: start.Add(30 * 24 * time.Hour)}
			if err := s.InsertEnrolment(ctx, e, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimEnrolment(ctx, "REF", "c", start, start.Add(-enrol.ClaimTimeout)); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteEnrolment(ctx, "REF", "c", "0a", start, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertTransaction(ctx, enrol.Transaction{ID: "aa", Sender: "ref:REF", Serial: "0a", Created: start, State: "waiting"}); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseTransaction(ctx, "aa", "confirmed", start); err != nil {
				t.Fatal(err)
			}
			check := func(at time.Time, wantEnrolment, wantTx bool) {
				t.Helper()
				if _, _, err := enrol.Purge(ctx, s, at); err != nil {
					t.Fatal(err)
				}
				if _, err := s.GetEnrolment(ctx, "REF"); (err == nil) != wantEnrolment {
					t.Fatalf("at +%s: enrolment kept %v, want %v (%v)", at.Sub(start), err == nil, wantEnrolment, err)
				}
				if _, err := s.GetTransaction(ctx, "aa"); (err == nil) != wantTx {
					t.Fatalf("at +%s: transaction kept %v, want %v (%v)", at.Sub(start), err == nil, wantTx, err)
				}
			}
			check(start.Add(time.Hour), true, true)
			check(start.Add(enrol.TransactionRetention), true, true)
			check(start.Add(enrol.TransactionRetention+time.Second), true, false)
			check(start.Add(enrol.EnrolmentRetention), true, false)
			check(start.Add(enrol.EnrolmentRetention+time.Second), false, false)
		})
	}
}
