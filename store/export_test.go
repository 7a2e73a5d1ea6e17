package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
)

// ExecTx runs q (with ? placeholders) in a write transaction, for tests.
func (db *DB) ExecTx(ctx context.Context, q string, args ...any) error {
	return db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, q, args...)
		return mapErr("exec", err)
	})
}

// QueryInt64 reads one integer, for tests.
func (db *DB) QueryInt64(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := db.queryRow(ctx, q, args...).Scan(&n)
	return n, mapErr("query", err)
}

// Rebind exposes rebind for tests.
func (db *DB) Rebind(q string) string { return db.rebind(q) }

// WriteTx exposes writeTx for tests, with fn given the rebinding exec.
func (db *DB) WriteTx(ctx context.Context, fn func(exec func(q string, args ...any) error) error) error {
	return db.writeTx(ctx, func(t *txn) error {
		return fn(func(q string, args ...any) error {
			_, err := t.exec(ctx, q, args...)
			return mapErr("exec", err)
		})
	})
}

// MigrationVersions lists the embedded migrations of a dialect.
func MigrationVersions(dialect string) ([]string, error) {
	ms, err := loadMigrations(dialect)
	var out []string
	for _, m := range ms {
		out = append(out, m.version)
	}
	return out, err
}

// WriterPragma reads a PRAGMA on SQLite's writer connection, for tests.
func (db *DB) WriterPragma(ctx context.Context, name string) (string, error) {
	var v string
	err := db.writeTx(ctx, func(t *txn) error {
		return t.queryRow(ctx, "PRAGMA "+name).Scan(&v)
	})
	return v, err
}

// ExecOnReader runs q on the read pool, for tests.
func (db *DB) ExecOnReader(ctx context.Context, q string) error {
	_, err := db.r.ExecContext(ctx, q)
	return err
}

// WriteTxCommitting runs a write transaction that calls beforeCommit as
// its last statement's work before COMMIT, for tests of failures there.
func (db *DB) WriteTxCommitting(ctx context.Context, beforeCommit func()) error {
	return db.writeTx(ctx, func(t *txn) error {
		if _, err := t.exec(ctx, "SELECT 1"); err != nil {
			return err
		}
		beforeCommit()
		return nil
	})
}

// AppendAuditLockedUnsure runs the locked audit append with unsure as the
// tail of an earlier attempt whose outcome is unknown, for tests.
func (db *DB) AppendAuditLockedUnsure(ctx context.Context, seal func(audit.Head) ([]audit.Record, error), unsure audit.Head) error {
	return db.appendAuditLocked(ctx, seal, unsure)
}

// TrailQuery exposes trailQuery for tests.
func TrailQuery(objects []string, limit int) (string, []any) { return trailQuery(objects, limit) }

// QueryLines runs q (with ? placeholders) and returns each row's first
// column as text: EXPLAIN's output, for tests.
func (db *DB) QueryLines(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		line := ""
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			line += fmt.Sprint(v) + " "
		}
		out = append(out, line)
	}
	return out, rows.Err()
}

// ProbeWrite is probeWrite, for the external tests.
func (db *DB) ProbeWrite(ctx context.Context) error { return db.probeWrite(ctx) }

// ActivityQuery exposes activityQuery for tests.
func ActivityQuery(q activity.Query) (string, []any) { return activityQuery(q) }

// HoldingsQuery exposes holdingsQuery for tests.
func HoldingsQuery(civil string, limit int) (string, []any) { return holdingsQuery(civil, limit) }

// FillHolders runs the holder backfill to its end, for tests.
func (db *DB) FillHolders(ctx context.Context) (int, error) { return db.fillHolders(ctx) }

// WaitHolderFill waits for the backfill Open started, if any; it reports whether one ran.
func (db *DB) WaitHolderFill() bool {
	if db.holders == nil {
		return false
	}
	<-db.holders.done
	return true
}

// PreHolderHoldings is Holdings as it was before migration 0020 (a LIKE
// over every certificate's subject, each candidate parsed), for the
// benchmark's comparison.
func (a *Activity) PreHolderHoldings(ctx context.Context, civilNumber string, limit int) ([]activity.Holding, error) {
	rows, err := a.db.query(ctx, `SELECT serial, credential_id, der FROM certificates
	WHERE state = 'issued' AND lower(subject) LIKE ? ESCAPE '\' ORDER BY issued_at DESC, serial`, "%-"+likeEscape(strings.ToLower(civilNumber))+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []activity.Holding
	for rows.Next() && len(out) < limit {
		var h activity.Holding
		var cred sql.NullString
		var der []byte
		if err := rows.Scan(&h.Serial, &cred, &der); err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil || auth.CivilNumber(cert.Subject.SerialNumber) != civilNumber {
			continue
		}
		h.CredentialID = cred.String
		out = append(out, h)
	}
	return out, rows.Err()
}

// ExecRaw runs q on the writer connection outside a transaction (VACUUM,
// PRAGMA wal_checkpoint), for tests.
func (db *DB) ExecRaw(ctx context.Context, q string) error {
	_, err := db.w.ExecContext(ctx, q)
	return err
}

// VoidSQL returns the statements VoidEnrolment runs on the certificates
// under an enrolment's request ID, for their plans.
func VoidSQL() (abandon, check string) { return voidAbandonSQL, voidCheckSQL }
