package crl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// importLog records the audit entries of imports; fail makes Append fail.
type importLog struct {
	entries []audit.Entry
	fail    error
}

func (l *importLog) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	if l.fail != nil {
		return audit.Record{}, l.fail
	}
	l.entries = append(l.entries, e)
	return audit.Record{}, nil
}

// failingSave is an ImportedStore whose saves fail.
type failingSave struct{ memImported }

var errDisk = errors.New("disk full")

func (*failingSave) SaveImportedCRL(context.Context, *ImportedCRL, string, time.Time) error {
	return errDisk
}

// TestImportRecordsFirstAndOnce: an import is recorded before it is kept
// (a CRL kept without its record cannot happen, whatever stops the run),
// the very same CRL again changes and records nothing, an older one is
// refused without a record, and a save that fails leaves a failure record.
func TestImportRecordsFirstAndOnce(t *testing.T) {
	ctx := context.Background()
	root, key := testRoot(t, "Root")
	now := time.Now()
	check := func(number int64, this time.Time) *ImportedCRL {
		c, err := CheckImported("root", signedCRL(t, root, key, number, this, now.Add(20*24*time.Hour)), root, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c5 := check(5, now.Add(-time.Hour))

	// The audit log fails: nothing is kept.
	st := &memImported{m: map[string]*ImportedCRL{}}
	log := &importLog{fail: errors.New("audit down")}
	if err := Import(ctx, st, log, c5, "c5.crl", "op", now); err == nil {
		t.Fatal("import without its audit record succeeded")
	}
	if _, err := st.ImportedCRL(ctx, "root"); !errors.Is(err, ErrNoImported) {
		t.Fatalf("a CRL was kept without its audit record: %v", err)
	}

	log.fail = nil
	if err := Import(ctx, st, log, c5, "c5.crl", "op", now); err != nil {
		t.Fatal(err)
	}
	if len(log.entries) != 1 || log.entries[0].Outcome != audit.OutcomeSuccess {
		t.Fatalf("records after the import: %+v", log.entries)
	}
	// The same CRL again: nothing stored, nothing recorded.
	if err := Import(ctx, st, log, c5, "c5.crl", "op", now); !errors.Is(err, ErrAlreadyImported) {
		t.Fatalf("the same CRL again: %v, want ErrAlreadyImported", err)
	}
	if len(log.entries) != 1 {
		t.Fatalf("the same CRL again was recorded again: %d records", len(log.entries))
	}
	// An older one: refused, no record.
	c4 := check(4, now.Add(-2*time.Hour))
	if err := Import(ctx, st, log, c4, "c4.crl", "op", now); !errors.Is(err, ErrNotNewer) {
		t.Fatalf("an older CRL: %v, want ErrNotNewer", err)
	}
	if len(log.entries) != 1 {
		t.Fatalf("a refused import was recorded as an import: %+v", log.entries)
	}
	// The store fails after the record: a failure record follows it.
	fs := &failingSave{memImported{m: map[string]*ImportedCRL{}}}
	log2 := &importLog{}
	if err := Import(ctx, fs, log2, c5, "c5.crl", "op", now); !errors.Is(err, errDisk) {
		t.Fatalf("failing store: %v", err)
	}
	if len(log2.entries) != 2 || log2.entries[1].Outcome != audit.OutcomeFailure {
		t.Fatalf("records after a failed save: %+v", log2.entries)
	}
}

// cancelAfterRecord is an audit log that, like the real one, refuses to
// write once ctx is done, and cancels ctx right after its first record: an
// operator's Ctrl-C arriving between the record and the save.
type cancelAfterRecord struct {
	importLog
	cancel context.CancelFunc
}

func (l *cancelAfterRecord) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if err := ctx.Err(); err != nil {
		return audit.Record{}, err
	}
	r, err := l.importLog.Append(ctx, e)
	l.cancel()
	return r, err
}

// ctxStore is an ImportedStore whose saves, like a database's, fail once
// ctx is done.
type ctxStore struct{ memImported }

func (s *ctxStore) SaveImportedCRL(ctx context.Context, c *ImportedCRL, by string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.memImported.SaveImportedCRL(ctx, c, by, at)
}

// TestImportCancelledAfterRecord: a cancellation arriving once the success
// record is written must not leave that record claiming an import that did
// not happen: the CRL is kept, or a failure record follows.
func TestImportCancelledAfterRecord(t *testing.T) {
	root, key := testRoot(t, "Root")
	now := time.Now()
	c, err := CheckImported("root", signedCRL(t, root, key, 5, now.Add(-time.Hour), now.Add(20*24*time.Hour)), root, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &ctxStore{memImported{m: map[string]*ImportedCRL{}}}
	log := &cancelAfterRecord{cancel: cancel}
	ierr := Import(ctx, st, log, c, "c5.crl", "op", now)
	_, kerr := st.ImportedCRL(context.Background(), "root")
	kept := kerr == nil
	failed := len(log.entries) > 1 && log.entries[len(log.entries)-1].Outcome == audit.OutcomeFailure
	if len(log.entries) == 0 || log.entries[0].Outcome != audit.OutcomeSuccess {
		t.Fatalf("records: %+v", log.entries)
	}
	if !kept && !failed {
		t.Fatalf("the success record claims an import that did not happen, with no failure record after it (Import: %v, records: %+v)", ierr, log.entries)
	}
	if kept && ierr != nil {
		t.Fatalf("the CRL was kept but Import answered %v", ierr)
	}
}
