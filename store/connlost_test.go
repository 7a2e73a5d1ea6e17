package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// terminateBackends ends every other session of the database dsn names,
// from a connection of its own, as pg_terminate_backend does on a restart,
// a failover or an operator's intervention, and returns how many it ended.
func terminateBackends(t *testing.T, dsn string) int {
	t.Helper()
	ctx := ctxT(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to terminate backends: %v", err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatalf("terminating backends: %v", err)
	}
	return n
}

// TestConnectionsTerminated: after PostgreSQL terminated the pool's
// connections (restart, failover, pg_terminate_backend), the next write,
// read and audit append succeed, each on the first attempt its caller
// makes, and the audit chain holds every append once.
func TestConnectionsTerminated(t *testing.T) {
	d := storetest.Dialects()[1]
	if d.Name != store.DriverPostgres {
		t.Fatalf("dialect %s, want postgres", d.Name)
	}
	cfg := d.NewConfig(t)
	ctx := ctxT(t)
	appends := 0
	for _, tc := range []struct {
		name string
		op   func(db *store.DB, lg *audit.Log) error
	}{
		{"audit append (one-statement path)", func(_ *store.DB, lg *audit.Log) error {
			appends++
			_, err := lg.Append(ctx, audit.Entry{Actor: "test", Action: "test.append", Outcome: "success"})
			return err
		}},
		{"write transaction", func(db *store.DB, _ *audit.Log) error {
			_, err := db.SerialBlocks().ReserveBlock(ctx, "tsa", 10)
			return err
		}},
		{"single-row read", func(db *store.DB, _ *audit.Log) error {
			_, err := db.SerialBlocks().NextSerial(ctx, "tsa")
			return err
		}},
		{"read", func(db *store.DB, _ *audit.Log) error {
			return db.AuditRecords(ctx, 1, func(audit.Record) error { return nil })
		}},
		{"search by time (read transaction)", func(db *store.DB, _ *audit.Log) error {
			_, err := db.FindAuditRecords(ctx, audit.Query{Since: time.Unix(0, 1), Limit: 5})
			return err
		}},
		{"audit append (locked path)", func(db *store.DB, lg *audit.Log) error {
			// Another instance moved the head: this one's hint is stale.
			other := storetest.Open(t, cfg)
			if err := other.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) { return chain(h, 1), nil }); err != nil {
				return err
			}
			appends += 2
			_ = terminateBackends(t, cfg.DSN)
			_, err := lg.Append(ctx, audit.Entry{Actor: "test", Action: "test.append", Outcome: "success"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.Open(t, cfg)
			lg := audit.New(db, nil, nil, audit.Options{})
			defer lg.Close()
			if err := tc.op(db, lg); err != nil {
				t.Fatalf("before the connections were terminated: %v", err)
			}
			if n := terminateBackends(t, cfg.DSN); n == 0 {
				t.Fatal("no connection to terminate")
			}
			if err := tc.op(db, lg); err != nil {
				t.Fatalf("after the connections were terminated: %v", err)
			}
		})
	}
	db := storetest.Open(t, cfg)
	rep, err := audit.Verify(ctx, db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit chain: %v, %v", rep, err)
	}
	if rep.Verified != int64(appends) {
		t.Errorf("audit chain holds %d records, want %d (one per append)", rep.Verified, appends)
	}
}

// TestOutcomeUnknownIsNotRetried: a write transaction whose COMMIT lost its
// connection is not run again (it may have been committed), and its error
// says so.
func TestOutcomeUnknownIsNotRetried(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	db := storetest.Open(t, cfg)
	ctx := ctxT(t)
	runs := 0
	err := db.WriteTxCommitting(ctx, func() {
		runs++
		terminateBackends(t, cfg.DSN)
	})
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("error %v, want one wrapping ErrOutcomeUnknown", err)
	}
	if runs != 1 {
		t.Errorf("the transaction ran %d times, want once", runs)
	}
}

// killingCerts terminates every connection of the database before the CA
// stores a certificate (after its intent).
type killingCerts struct {
	*store.Certificates
	t   *testing.T
	dsn string
}

func (k killingCerts) InsertCertificate(ctx context.Context, rec ca.CertificateRecord, seal audit.Sealer) error {
	terminateBackends(k.t, k.dsn)
	return k.Certificates.InsertCertificate(ctx, rec, seal)
}

// TestIssuanceConnectionsTerminated: issuance (the intent and the
// certificate, each one autocommitted statement) succeeds when its
// connection was terminated before either, and the certificate is stored
// once under its serial.
func TestIssuanceConnectionsTerminated(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	db := storetest.Open(t, cfg)
	ctx := ctxT(t)
	certs := db.Certificates(func(string) int { return 4 })
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	a := newAuditedAuthority(t, killingCerts{Certificates: certs, t: t, dsn: cfg.DSN}, log)
	for i := range 2 {
		terminateBackends(t, cfg.DSN) // before the intent
		got, err := a.Issue(ctx, citizenRequest(t))
		if err != nil {
			t.Fatalf("issuance %d: %v", i, err)
		}
		if rec, err := certs.GetCertificate(ctx, got.Serial); err != nil || string(rec.DER) != string(got.Certificate.Raw) {
			t.Fatalf("issuance %d: stored certificate: %v", i, err)
		}
		// Stored with its record, once.
		if n, err := db.QueryInt64(ctx, "SELECT count(*) FROM audit_log WHERE action = 'certificate.issue' AND object = '"+got.Serial+"'"); err != nil || n != 1 {
			t.Fatalf("issuance %d: %d certificate.issue records, %v", i, n, err)
		}
	}
	if n, err := db.QueryInt64(ctx, "SELECT count(*) FROM certificates"); err != nil || n != 2 {
		t.Errorf("%d certificate rows (%v), want 2", n, err)
	}
}

// TestAuditUnsureAppendFoundUnderTheLock: an append whose COMMIT lost its
// connection and that a read-back did not find may still have been
// committing (a primary waiting for its synchronous standby). The locked
// path looks for it again under the head's lock: found, nothing more is
// written (the events would otherwise be in the chain twice); not found
// (another tail at that seq), the records are sealed and written.
func TestAuditUnsureAppendFoundUnderTheLock(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			ctx := ctxT(t)
			var first []audit.Record
			if err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
				first = chain(h, 2)
				return first, nil
			}); err != nil {
				t.Fatal(err)
			}
			tail := first[len(first)-1]
			sealed := 0
			seal := func(h audit.Head) ([]audit.Record, error) { sealed++; return chain(h, 2), nil }
			if err := db.AppendAuditLockedUnsure(ctx, seal, audit.Head{Seq: tail.Seq, Hash: tail.Hash}); err != nil {
				t.Fatal(err)
			}
			if h, err := db.AuditHead(ctx); err != nil || h.Seq != tail.Seq || sealed != 0 {
				t.Fatalf("an append found committed was written again: head %d (want %d), sealed %d times, %v", h.Seq, tail.Seq, sealed, err)
			}
			other := append([]byte(nil), tail.Hash...)
			other[0] ^= 0xff
			if err := db.AppendAuditLockedUnsure(ctx, seal, audit.Head{Seq: tail.Seq, Hash: other}); err != nil {
				t.Fatal(err)
			}
			if h, err := db.AuditHead(ctx); err != nil || h.Seq != tail.Seq+2 || sealed != 1 {
				t.Fatalf("an append not found was not written: head %d (want %d), sealed %d times, %v", h.Seq, tail.Seq+2, sealed, err)
			}
			rep, err := audit.Verify(ctx, db)
			if err != nil || !rep.OK() || rep.Verified != 4 {
				t.Fatalf("audit chain: %+v, %v", rep, err)
			}
		})
	}
}
