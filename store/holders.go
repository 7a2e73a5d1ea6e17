package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
)

// holderFillBatch is how many certificates one transaction of the holder
// backfill fills: a bounded lock on SQLite's single writer and a bounded
// statement (3 parameters a row, far below either database's limit).
const holderFillBatch = 1000

// holderCivil returns the civil number of the certificate's holder, as a
// citizen's holdings are matched (auth.CivilNumber of the subject's
// serialNumber), "" when the subject names none.
func holderCivil(cert *x509.Certificate) string {
	return auth.CivilNumber(cert.Subject.SerialNumber)
}

// holderCivilOf is holderCivil of a stored DER; "" when it does not parse
// (such a certificate never was anyone's holding).
func holderCivilOf(der []byte) string {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return holderCivil(cert)
}

// holderFill is the background backfill of certificates.holder_civil.
type holderFill struct {
	stop context.CancelFunc
	done chan struct{}
}

// startHolderFill fills, in the background, the holder_civil of the
// issued certificates that have none (those stored before migration 0020,
// or by a node still running an older release during an upgrade). It
// starts nothing when there are none: one index lookup at Open. Close
// stops it; what it has filled stays filled, and the next Open carries on.
// Holdings is correct at every point of it (it also reads the rows still
// NULL), only slower until it is done.
func (db *DB) startHolderFill(ctx context.Context) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM certificates WHERE holder_civil IS NULL AND state = 'issued' LIMIT 1`).Scan(&one)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			db.logger.Warn("store: looking for certificates without a holder civil number", "err", err)
		}
		return
	}
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &holderFill{stop: stop, done: make(chan struct{})}
	db.holders = h
	go func() {
		defer close(h.done)
		t0 := time.Now()
		db.logger.Info("store: filling the holder civil number of certificates stored before migration 0020, in the background",
			"batch", holderFillBatch)
		n, err := db.fillHolders(fctx)
		switch {
		case err != nil && fctx.Err() != nil:
			db.logger.Info("store: filling holder civil numbers stopped by Close; the next start carries on", "filled", n)
		case err != nil:
			db.logger.Warn("store: filling holder civil numbers failed; the next start carries on", "filled", n, "err", err)
		default:
			db.logger.Info("store: holder civil numbers filled", "certificates", n, "took", time.Since(t0).Round(time.Millisecond))
		}
	}()
}

// stopHolderFill stops the backfill, if running, and waits for it.
func (db *DB) stopHolderFill() {
	if db.holders != nil {
		db.holders.stop()
		<-db.holders.done
	}
}

// fillHolders fills batches until none is left and returns how many
// certificates it filled. Several nodes may run it at once on one
// PostgreSQL: each takes rows the others have not locked (SKIP LOCKED),
// and a value already written is kept (COALESCE), so a duplicate is harmless.
func (db *DB) fillHolders(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := db.fillHolderBatch(ctx)
		total += n
		if err != nil || n < holderFillBatch {
			if err == nil && db.dialect == DriverPostgres && total > 0 {
				// Each filled row left a dead version whose index entry is
				// a NULL of certificates_holder, which Holdings' NULL branch
				// would step over until autovacuum comes (1 million: p50
				// 1.8 ms, p99 24 ms instead of 0.1 ms / 0.3 ms); and the
				// planner's statistics still see the column NULL.
				if _, err := db.w.ExecContext(ctx, "VACUUM (ANALYZE) certificates"); err != nil {
					db.logger.Warn("store: vacuuming certificates after the holder backfill", "err", err)
				}
			}
			return total, err
		}
	}
}

// fillHolderBatch fills up to holderFillBatch certificates in one
// transaction and returns how many it took.
func (db *DB) fillHolderBatch(ctx context.Context) (int, error) {
	lock := ""
	if db.dialect == DriverPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	n := 0
	err := db.writeTx(ctx, func(t *txn) error {
		rows, err := t.query(ctx, `SELECT serial, der FROM certificates WHERE holder_civil IS NULL AND state = 'issued' LIMIT ?`+lock, holderFillBatch)
		if err != nil {
			return fmt.Errorf("reading certificates: %w", err)
		}
		var serials, civils []any
		for rows.Next() {
			var serial string
			var der []byte
			if err := rows.Scan(&serial, &der); err != nil {
				rows.Close()
				return fmt.Errorf("reading certificates: %w", err)
			}
			serials = append(serials, serial)
			civils = append(civils, holderCivilOf(der))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading certificates: %w", err)
		}
		n = len(serials)
		if n == 0 {
			return nil
		}
		var b strings.Builder
		args := make([]any, 0, 3*n)
		// Rows by their primary key only: a condition on holder_civil
		// here would let SQLite walk certificates_holder's NULL entries
		// (every row still to fill) on each batch. COALESCE keeps a
		// value another node wrote meanwhile.
		b.WriteString("UPDATE certificates SET holder_civil = COALESCE(holder_civil, CASE serial")
		for i := range serials {
			b.WriteString(" WHEN ? THEN ?")
			args = append(args, serials[i], civils[i])
		}
		b.WriteString(" END) WHERE serial IN (?" + strings.Repeat(", ?", n-1) + ")")
		args = append(args, serials...)
		if _, err := t.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("writing holder civil numbers: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, mapErr("store: filling holder civil numbers", err)
	}
	return n, nil
}
