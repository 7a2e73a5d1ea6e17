package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// certWriter runs the CA's per-issuance statements. On SQLite they are
// prepared once (SQLite parses a statement on every call otherwise; pgx
// caches prepared statements by itself), and the intents and certificate
// updates of concurrent issuances are committed together in one write
// transaction (group commit), since SQLite has a single writer.
type certWriter struct {
	db *DB

	// ready is set once the statements are prepared; prepMu serialises
	// preparing, which is tried again after a failure.
	ready  atomic.Bool
	prepMu sync.Mutex
	// On SQLite only; nil on PostgreSQL.
	insertIntent, issue, findIssued *sql.Stmt

	mu      sync.Mutex
	pending []*writeOp
	leading bool // a caller is committing a batch; the others queue
}

// writeOp is one queued write statement and its outcome.
type writeOp struct {
	st   *sql.Stmt
	args []any
	// seal (nil: none) writes the audit records of the statement, in its
	// transaction, when it changed one row.
	seal audit.Sealer
	// On PostgreSQL (q set, st nil): the statement's text, and the query that
	// finds a row only once the statement took effect.
	q        string
	look     string
	lookArgs []any
	n        int64
	err      error
	done     chan struct{} // closed when n and err are set
	lead     chan struct{} // receives when this caller is to commit the next batch
}

// insertIntentSQL reserves the serial unless the key (SPKI hash) has a
// live certificate for another subject: then it changes no row. The
// parameters are the intent's columns, then the key hash and the subject
// again. PostgreSQL types the parameters of a SELECT list from casts.
func insertIntentSQL(dialect string) string {
	blob, integer := "BLOB", "INTEGER"
	if dialect == DriverPostgres {
		blob, integer = "BYTEA", "BIGINT"
	}
	return `INSERT INTO certificates
	(serial, ca, profile, state, tbs_hash, key_hash, request_id, requested_by, not_after, created_at, subject, replaces, key_label,
	renewal_completed_at)
	SELECT ?, ?, ?, 'intent', CAST(? AS ` + blob + `), CAST(? AS ` + blob + `), ?, ?, CAST(? AS ` + integer + `), CAST(? AS ` + integer + `), ?, ?, ?,
	CAST(? AS ` + integer + `)
	WHERE NOT EXISTS (SELECT 1 FROM certificates o
		WHERE o.key_hash = CAST(? AS ` + blob + `) AND o.state <> 'abandoned' AND o.subject IS NOT NULL AND o.subject <> ?)`
}

const (
	issueCertificateSQL = `UPDATE certificates
	SET state = 'issued', der = ?, subject = ?, not_before = ?, not_after = ?, credential_id = ?, crl_partition = ?, issued_at = ?,
	holder_civil = ?
	WHERE serial = ? AND state = 'intent' AND tbs_hash = ? AND ca = ? AND profile = ?
	AND NOT EXISTS (SELECT 1 FROM blocked_keys b WHERE b.key_hash = certificates.key_hash)`
	// issuedLookSQL finds a certificate that issueCertificateSQL issued
	// (parameters: its serial, tbs_hash, ca, profile).
	issuedLookSQL = `SELECT 1 FROM certificates WHERE serial = ? AND tbs_hash = ? AND ca = ? AND profile = ? AND state = 'issued'`
	// storedLookSQL finds the certificate that one issueCertificateSQL
	// stored (parameters: its serial, its DER).
	storedLookSQL = `SELECT 1 FROM certificates WHERE serial = ? AND der = ? AND state = 'issued'`
	// Every certificate of the key and profile counts, renewals too (index
	// certificates_key_hash).
	findIssuedSQL = `SELECT serial FROM certificates
	WHERE key_hash = ? AND profile = ? AND state = 'issued' AND not_after > ? LIMIT 1`
)

// prepared returns whether the prepared statements are in use (SQLite),
// preparing them on first use. A failure (a busy schema read, say) is
// returned to this caller and preparing is tried again by the next one.
func (w *certWriter) prepared(ctx context.Context) (bool, error) {
	if w.db.dialect != DriverSQLite {
		return false, nil
	}
	if w.ready.Load() {
		return true, nil
	}
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	if w.ready.Load() {
		return true, nil
	}
	var stmts [3]*sql.Stmt
	for i, p := range []struct {
		on *sql.DB
		q  string
	}{
		{w.db.w, insertIntentSQL(w.db.dialect)},
		{w.db.w, issueCertificateSQL},
		{w.db.r, findIssuedSQL},
	} {
		st, err := p.on.PrepareContext(context.WithoutCancel(ctx), p.q)
		if err != nil {
			for _, done := range stmts[:i] {
				done.Close()
			}
			return false, fmt.Errorf("store: preparing %q: %w", p.q, err)
		}
		stmts[i] = st
	}
	w.insertIntent, w.issue, w.findIssued = stmts[0], stmts[1], stmts[2]
	w.ready.Store(true)
	return true, nil
}

// execPrepared runs a prepared write statement on its own, retrying
// retryable failures like execOne, and returns the rows it changed.
func execPrepared(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	for attempt := 1; ; attempt++ {
		res, err := st.ExecContext(ctx, args...)
		if err == nil {
			return res.RowsAffected()
		}
		if !isRetryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			return 0, unavailable(err)
		}
		time.Sleep(time.Duration(attempt*attempt) * 5 * time.Millisecond)
	}
}

// insertIntentRow runs the intent INSERT and returns the rows it added
// (0: the key has another subject's certificate).
func (w *certWriter) insertIntentRow(ctx context.Context, args []any) (int64, error) {
	ok, err := w.prepared(ctx)
	if err != nil {
		return 0, err
	}
	if ok {
		return w.write(ctx, w.insertIntent, args, nil)
	}
	// args: serial, ca, profile, tbs_hash, …
	return w.db.execOneSettled(ctx, `SELECT 1 FROM certificates WHERE serial = ? AND ca = ? AND profile = ? AND tbs_hash = ?`,
		args[:4], insertIntentSQL(w.db.dialect), args...)
}

// findIssuedRow runs the FindIssued query.
func (w *certWriter) findIssuedRow(ctx context.Context, args ...any) (*sql.Row, error) {
	ok, err := w.prepared(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		return w.findIssued.QueryRowContext(ctx, args...), nil
	}
	return w.db.queryRow(ctx, findIssuedSQL, args...), nil
}

// issueCertificate runs the certificate UPDATE and returns the rows it
// changed; when it changed one, the audit records of seal (nil: none) are
// committed in the same transaction.
func (w *certWriter) issueCertificate(ctx context.Context, args []any, seal audit.Sealer) (int64, error) {
	ok, err := w.prepared(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		// args: der, …, holder_civil, serial, tbs_hash, ca, profile
		if seal == nil {
			return w.db.execOneSettled(ctx, issuedLookSQL, args[8:12], issueCertificateSQL, args...)
		}
		// Concurrent issuances share one transaction, and one turn of the
		// audit head's lock, as on SQLite. Whether one took effect is told
		// by its own certificate (its DER, whose signature no other call
		// shares), not by another update of the same serial.
		return w.enqueue(ctx, &writeOp{q: issueCertificateSQL, args: args, seal: seal, look: storedLookSQL,
			lookArgs: []any{args[8], args[0]}})
	}
	return w.write(ctx, w.issue, args, seal)
}

// execAuditedSettled runs one write statement and, when it changed one
// row, the audit records of seal, in one transaction, and returns the rows
// it changed. When the connection was lost during the commit it looks
// whether it took effect (done: the row is in the state the statement
// leaves it in; its records were committed with it) and runs it again when
// it did not, a few times. unsure tells that an earlier attempt (a batch)
// may still be committing: a run that then changes no row looks too, since
// that attempt may have changed it, with its records, meanwhile.
func (db *DB) execAuditedSettled(ctx context.Context, unsure bool, done string, doneArgs []any, seal audit.Sealer, q string, args ...any) (int64, error) {
	for attempt := 1; ; attempt++ {
		var n int64
		err := db.auditedTxSettling(ctx, true, func(t *txn, records *auditInTx) error {
			res, err := t.exec(ctx, q, args...)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n != 1 {
				return err
			}
			return records.appendAudit(ctx, t, seal)
		})
		if err == nil && (n == 1 || !unsure) {
			return n, nil
		}
		if err != nil && !errors.Is(err, ErrOutcomeUnknown) {
			return 0, err
		}
		var one int
		rerr := db.queryRow(ctx, done, doneArgs...).Scan(&one)
		switch {
		case rerr == nil:
			if seal != nil {
				seal.Committed() // committed with the row
			}
			return 1, nil
		case err == nil && errors.Is(rerr, sql.ErrNoRows):
			return n, nil // no row changed, by this run or an earlier one
		case err == nil:
			return 0, mapErr("store: looking whether a write took effect", rerr)
		case !errors.Is(rerr, sql.ErrNoRows):
			// Answered as failed: counted as a failed append, as
			// auditedTx does when it does not settle.
			noteFailed(seal, err)
			return 0, fmt.Errorf("%w (and looking: %w)", err, rerr)
		case attempt == maxTxAttempts || !db.pauseAfterConnLost(ctx, attempt, err):
			noteFailed(seal, err)
			return 0, err
		}
		unsure = true // this attempt may still be committing
	}
}

// write runs one prepared write statement (SQLite) and returns the rows it
// changed. Concurrent callers' statements (intents and certificates) are
// committed in one transaction by whichever of them got there first; the
// others wait for it and get their own statement's outcome. The caller's
// context bounds its wait only when it commits: a queued statement is
// committed whatever happens to its caller, like one already sent to the
// database.
//
// seal (nil: none) writes the statement's audit records in the same
// transaction when it changed one row.
func (w *certWriter) write(ctx context.Context, st *sql.Stmt, args []any, seal audit.Sealer) (int64, error) {
	return w.enqueue(ctx, &writeOp{st: st, args: args, seal: seal})
}

// enqueue is write for the operation u (a prepared statement, or on
// PostgreSQL a statement's text with its audit records).
func (w *certWriter) enqueue(ctx context.Context, u *writeOp) (int64, error) {
	u.done, u.lead = make(chan struct{}), make(chan struct{}, 1)
	w.mu.Lock()
	w.pending = append(w.pending, u)
	if w.leading {
		w.mu.Unlock()
		select {
		case <-u.done:
			return u.n, u.err
		case <-u.lead:
		}
		w.mu.Lock()
	}
	w.leading = true
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()

	func() {
		// Hand over even if commit panics, or every later write would wait.
		defer func() {
			w.mu.Lock()
			if len(w.pending) > 0 {
				w.pending[0].lead <- struct{}{} // the first queued caller commits the next batch
			} else {
				w.leading = false
			}
			w.mu.Unlock()
		}()
		w.commit(context.WithoutCancel(ctx), batch)
	}()
	return u.n, u.err
}

// commit runs the batch's statements in one transaction. A unique
// constraint violation fails only its own statement (SQLite backs out the
// statement and keeps the transaction). Should the transaction fail for
// any other reason, nothing of it is kept and each statement runs on its
// own, so that one bad statement cannot fail the others. It sets every
// statement's outcome and closes its done channel.
func (w *certWriter) commit(ctx context.Context, batch []*writeOp) {
	defer func() {
		// A panic in the driver fails the whole batch, for every caller,
		// instead of leaving them to believe their statement ran.
		if r := recover(); r != nil {
			err := fmt.Errorf("store: CA write batch aborted: %v", r)
			w.db.logger.Error("store: CA write batch panicked", "statements", len(batch), "err", err)
			for _, u := range batch {
				u.n, u.err = 0, err
			}
		}
		for _, u := range batch {
			close(u.done)
		}
	}()
	var batchErr error // PostgreSQL: why the batch failed
	if len(batch) > 1 && batch[0].q != "" {
		batchErr = w.commitPG(ctx, batch)
		if batchErr == nil {
			return
		}
		err := batchErr
		w.db.logger.Warn("store: CA write batch failed, committing its statements one by one", "statements", len(batch), "err", err)
	} else if len(batch) > 1 {
		var records auditInTx
		err := w.db.writeTx(ctx, func(t *txn) error {
			records.begin()
			for _, u := range batch {
				u.n, u.err = 0, nil // this attempt's outcome only (read below)
			}
			bound := map[*sql.Stmt]*sql.Stmt{}
			var seals []audit.Sealer
			for _, u := range batch {
				st, ok := bound[u.st]
				if !ok {
					st = t.tx.StmtContext(ctx, u.st)
					bound[u.st] = st
				}
				u.n, u.err = 0, nil
				res, err := st.ExecContext(ctx, u.args...)
				if err != nil {
					if !isUniqueViolation(err) {
						return err
					}
					u.err = err
					continue
				}
				if u.n, err = res.RowsAffected(); err != nil {
					return err
				}
				if u.n == 1 && u.seal != nil {
					seals = append(seals, u.seal)
				}
			}
			// The batch's audit records, sealed in statement order at the
			// head read once under the transaction's write lock.
			return records.appendAudit(ctx, t, chainSealers(seals))
		})
		if err == nil {
			records.done(w.db)
			return
		}
		w.db.logger.Warn("store: CA write batch failed, committing its statements one by one", "statements", len(batch), "err", err)
	}
	for _, u := range batch {
		if u.q != "" {
			u.n, u.err = w.settle(ctx, u, batchErr)
			continue
		}
		if u.seal == nil {
			u.n, u.err = execPrepared(ctx, u.st, u.args...)
			continue
		}
		// When the failed batch had written u's records (SQLite: u.n is
		// still 1) and u fails on its own without telling its sealer
		// (before writing them again: a full disk, a busy database), they
		// count once as a failed append, as in settle.
		seal := u.seal
		var told *toldSealer
		if u.n == 1 && u.err == nil {
			told = &toldSealer{Sealer: u.seal}
			seal = told
		}
		u.err = w.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
			res, err := t.tx.StmtContext(ctx, u.st).ExecContext(ctx, u.args...)
			if err != nil {
				return err
			}
			if u.n, err = res.RowsAffected(); err != nil || u.n != 1 {
				return err
			}
			return records.appendAudit(ctx, t, seal)
		})
		if u.err != nil {
			u.n = 0
			if told != nil && !told.told {
				noteFailed(u.seal, u.err)
			}
		}
	}
}

// settle runs u (a PostgreSQL statement with its audit records) on its own.
// After a batch whose commit lost its connection (batchErr wraps
// ErrOutcomeUnknown) it looks first whether the batch took effect all the
// same: then u's row and records were committed together. After a batch
// that failed otherwise nothing of it was kept, and it does not look: the
// row may be another update's of the same serial, run on its own first.
//
// When the batch's last attempt had written u's records (u.n is still 1)
// and u ends failed, they count once as a failed append, as in auditedTx:
// here when looking fails, or when u's own run fails without telling its
// sealer (before it wrote them again: no connection, a statement error).
func (w *certWriter) settle(ctx context.Context, u *writeOp, batchErr error) (int64, error) {
	unsure := errors.Is(batchErr, ErrOutcomeUnknown)
	sealed := u.seal != nil && u.n == 1
	if unsure {
		var one int
		err := w.db.queryRow(ctx, u.look, u.lookArgs...).Scan(&one)
		if err == nil {
			if u.seal != nil {
				u.seal.Committed() // committed with the row, in the batch
			}
			return 1, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			if sealed {
				noteFailed(u.seal, err)
			}
			return 0, mapErr("store: looking whether a write took effect", err)
		}
	}
	if !sealed {
		return w.db.execAuditedSettled(ctx, unsure, u.look, u.lookArgs, u.seal, u.q, u.args...)
	}
	told := &toldSealer{Sealer: u.seal}
	n, err := w.db.execAuditedSettled(ctx, unsure, u.look, u.lookArgs, told, u.q, u.args...)
	if err != nil && !told.told {
		noteFailed(u.seal, err)
	}
	return n, err
}

// toldSealer is a Sealer that remembers whether it was told the outcome
// of its records (Committed or Failed).
type toldSealer struct {
	audit.Sealer
	told bool
}

// Committed implements audit.Sealer.
func (s *toldSealer) Committed() {
	s.told = true
	s.Sealer.Committed()
}

// Failed implements audit.FailureNoter.
func (s *toldSealer) Failed(err error) {
	s.told = true
	noteFailed(s.Sealer, err)
}

// commitPG commits a batch of PostgreSQL certificate updates (issueCertificateSQL's
// arguments, each with its audit records) in one transaction: one
// multi-row UPDATE, then the records of the certificates it issued, sealed
// at the head read once under its lock. It sets each operation's n.
func (w *certWriter) commitPG(ctx context.Context, batch []*writeOp) error {
	var records auditInTx
	err := w.db.writeTx(ctx, func(t *txn) error {
		records.begin()
		for _, u := range batch {
			u.n = 0 // this attempt's outcome only (settle reads it)
		}
		var b strings.Builder
		b.WriteString(`UPDATE certificates AS c SET state = 'issued', der = v.der, subject = v.subject, not_before = v.not_before,
	not_after = v.not_after, credential_id = v.credential_id, crl_partition = v.crl_partition, issued_at = v.issued_at,
	holder_civil = v.holder_civil
	FROM (VALUES `)
		args := make([]any, 0, 13*len(batch))
		for i, u := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?::integer,?::bytea,?::text,?::bigint,?::bigint,?::text,?::integer,?::bigint,?::text,?::text,?::bytea,?::text,?::text)")
			args = append(args, i)
			args = append(args, u.args...)
		}
		// Each row updated answers the position of the operation whose
		// values it took: two operations for one serial (a duplicate
		// call) update it once, and only that one reports it issued.
		b.WriteString(`) AS v(op, der, subject, not_before, not_after, credential_id, crl_partition, issued_at, holder_civil, serial, tbs_hash, ca, profile)
	WHERE c.serial = v.serial AND c.state = 'intent' AND c.tbs_hash = v.tbs_hash AND c.ca = v.ca AND c.profile = v.profile
	AND NOT EXISTS (SELECT 1 FROM blocked_keys bk WHERE bk.key_hash = c.key_hash)
	RETURNING v.op`)
		rows, err := t.query(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		issued := make([]bool, len(batch))
		for rows.Next() {
			var op int
			if err := rows.Scan(&op); err != nil {
				rows.Close()
				return err
			}
			if op < 0 || op >= len(batch) {
				rows.Close()
				return fmt.Errorf("store: the batch update answered operation %d of %d", op, len(batch))
			}
			issued[op] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var seals []audit.Sealer
		for i, u := range batch {
			u.n, u.err = 0, nil
			if issued[i] {
				u.n = 1
				seals = append(seals, u.seal)
			}
		}
		return records.appendAudit(ctx, t, chainSealers(seals))
	})
	if err == nil {
		records.done(w.db)
	}
	return err
}
