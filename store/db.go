package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/diskspace"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// sqliteBusyTimeout is how long a SQLite connection waits for another
// connection or process to release the write lock before failing.
const sqliteBusyTimeout = 10 * time.Second

// maxTxAttempts bounds writeTx's retries of retryable failures.
const maxTxAttempts = 5

// DB is an open, migrated database. It is safe for concurrent use.
type DB struct {
	dialect string
	// w runs write transactions. For SQLite it has a single connection
	// whose transactions begin with BEGIN IMMEDIATE; for PostgreSQL it is
	// the one pool, shared with r.
	w *sql.DB
	// r runs reads outside transactions. For SQLite it is a pool of
	// query-only connections reading the WAL concurrently with the writer.
	r      *sql.DB
	logger *slog.Logger

	auditSQL auditStatements
	// ckpt checkpoints SQLite's WAL in the background (nil for PostgreSQL).
	ckpt *checkpointer

	hintMu sync.Mutex
	hint   audit.Head // the audit head this DB last wrote (PostgreSQL fast path)

	// health tells whether writes fail because of the disk (Ping).
	health writeHealth
	// sqliteDir is the folder of the SQLite database file (empty for
	// PostgreSQL), whose free space Ping checks after a disk-full episode.
	sqliteDir string

	// holders is the backfill of certificates.holder_civil, nil when
	// nothing was left to fill at Open.
	holders *holderFill
}

// Open connects to the database cfg names, configures it and applies every
// pending migration. Two processes may Open the same database at once.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{dialect: cfg.dialect(), logger: logger}
	var err error
	switch db.dialect {
	case DriverSQLite:
		err = db.openSQLite(ctx, cfg)
	case DriverPostgres:
		err = db.openPostgres(ctx, cfg)
	}
	if err == nil {
		err = db.migrate(ctx)
	}
	if err == nil {
		err = db.prepareAudit(ctx)
	}
	if err == nil {
		db.startHolderFill(ctx)
	}
	if err != nil {
		db.Close()
		if isStorageFault(err) {
			// "disk I/O error (4874)" alone does not tell an operator what to do.
			err = storageFault{fmt.Errorf("%w (is the disk under the database full or read-only? free space and start again)", err)}
		}
		return nil, err
	}
	return db, nil
}

func (db *DB) openSQLite(ctx context.Context, cfg Config) error {
	path, err := filepath.Abs(cfg.DSN)
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("store: sqlite: folder of %s: %w", path, err)
		}
	}
	db.sqliteDir = filepath.Dir(path)
	// The database holds the audit log and credential state: create it
	// readable by its owner only (SQLite gives its -wal and -shm files the
	// database file's mode, and opens an empty file as an empty database).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("store: sqlite: creating %s: %w", path, err)
	}
	sync := strings.ToUpper(cfg.Synchronous)
	if sync == "" {
		sync = "NORMAL"
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	common := url.Values{}
	common.Set("_busy_timeout", strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10))
	common.Set("_foreign_keys", "1")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = v
	}
	wq.Set("_journal_mode", "WAL")
	wq.Set("_synchronous", sync)
	wq.Set("_txlock", "immediate")
	walWriterPragmas(wq)
	db.w, err = sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return fmt.Errorf("store: sqlite: opening %s: %w", path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxIdleTime(0)
	// The writer connection creates the file and switches it to WAL before
	// any reader opens it. SQLite answers a journal-mode switch that races
	// another process's with SQLITE_BUSY at once, without waiting
	// busy_timeout, so the first connection is retried for as long.
	if err := pingRetryingBusy(ctx, db.w); err != nil {
		return fmt.Errorf("store: sqlite: opening %s: %w", path, err)
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = v
	}
	rq.Set("_query_only", "1")
	db.r, err = sql.Open("sqlite", base+"?"+rq.Encode())
	if err != nil {
		return fmt.Errorf("store: sqlite: opening %s for reading: %w", path, err)
	}
	n := cfg.MaxOpenConns
	if n == 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: sqlite: opening %s for reading: %w", path, err)
	}
	if err := db.startCheckpointer(ctx, base+"?"+walCheckpointerQuery(common).Encode(), walCheckpointInterval); err != nil {
		return err
	}
	if sync == "FULL" {
		db.logger.Info("store opened", "driver", DriverSQLite, "path", path, "synchronous", sync)
	} else {
		db.logger.Warn("store opened with synchronous NORMAL: the last commits (audit records included) may be lost on a power failure", "driver", DriverSQLite, "path", path)
	}
	return nil
}

// pingRetryingBusy connects w, retrying while SQLite reports the database
// busy, up to sqliteBusyTimeout.
func pingRetryingBusy(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	pause := 5 * time.Millisecond
	for {
		err := w.PingContext(ctx)
		if err == nil || !isRetryable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

func (db *DB) openPostgres(ctx context.Context, cfg Config) error {
	var err error
	db.w, err = sql.Open("pgx", cfg.DSN)
	if err != nil {
		return fmt.Errorf("store: postgres: %w", err)
	}
	db.r = db.w
	n := cfg.MaxOpenConns
	if n == 0 {
		n = 16
	}
	db.w.SetMaxOpenConns(n)
	db.w.SetMaxIdleConns(n)
	db.w.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.w.PingContext(pctx); err != nil {
		return fmt.Errorf("store: postgres: connecting: %w", err)
	}
	db.logger.Debug("store opened", "driver", DriverPostgres)
	return nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	db.stopHolderFill()
	var errs []error
	for _, s := range []*sql.Stmt{db.auditSQL.head, db.auditSQL.moveHead, db.auditSQL.insertOne} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.stop())
	}
	if db.r != nil && db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers (for /readyz). After a write
// failed because of the disk (full, read-only: isStorageFault), and until
// a write succeeds again, it also writes (probeWrite, changing nothing)
// and fails while that fails: a database that answers but cannot record
// anything is not ready to serve.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping (read pool): %w", err)
		}
	}
	if fault, since := db.writeFault(); fault != nil {
		if err := db.probeWrite(ctx); err != nil {
			return storageFault{fmt.Errorf("store: writes have failed since %s (disk full or read-only?): %w",
				since.UTC().Format(time.RFC3339), err)}
		}
		// SQLite's probe rewrites one page, which the WAL's pages already
		// on disk or a few freed bytes can take while every real write
		// still fails: on a full disk, /readyz would flip back to ready.
		// The episode ends only once the folder has room again.
		if free, ok := db.freeAfterFault(); !ok {
			return storageFault{fmt.Errorf("store: writes have failed since %s (disk full): the database's folder %s has %d bytes free (at least %d needed): free space there",
				since.UTC().Format(time.RFC3339), db.sqliteDir, free, minFreeAfterFault)}
		}
		db.writesRecovered()
	}
	return nil
}

// minFreeAfterFault is the free space the SQLite database's folder needs
// before a disk-full episode ends: a batch of audit records and the WAL
// frames of a few transactions.
const minFreeAfterFault = 1 << 20

// freeAfterFault returns the free bytes of the SQLite database's folder
// and whether they are enough to end a disk-full episode (always for
// PostgreSQL, whose server answers for its disk, and where the free
// space cannot be told).
func (db *DB) freeAfterFault() (int64, bool) {
	if db.sqliteDir == "" {
		return 0, true
	}
	free, known := diskspace.Free(db.sqliteDir)
	return free, !known || free >= minFreeAfterFault
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// rebind turns the ? placeholders of q into $1, $2 … for PostgreSQL. A ?
// inside a single-quoted string literal is left alone.
func (db *DB) rebind(q string) string {
	if db.dialect != DriverPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// maxReadAttempts bounds the attempts of a read outside a transaction
// whose connection was lost (a read is safe to repeat).
const maxReadAttempts = 3

// query runs a read outside a transaction. A read whose connection was
// lost before it answered (the server restarted or terminated it) runs
// again on another connection, a few times.
func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = db.rebind(q)
	for attempt := 1; ; attempt++ {
		rows, err := db.r.QueryContext(ctx, q, args...)
		if err == nil || !isConnLost(err) || attempt == maxReadAttempts || !db.pauseAfterConnLost(ctx, attempt, err) {
			return rows, unavailable(err)
		}
	}
}

// queryRow runs a single-row read outside a transaction, again on another
// connection when its connection was lost (like query).
func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = db.rebind(q)
	for attempt := 1; ; attempt++ {
		row := db.r.QueryRowContext(ctx, q, args...)
		if err := row.Err(); err == nil || !isConnLost(err) || attempt == maxReadAttempts || !db.pauseAfterConnLost(ctx, attempt, err) {
			return row
		}
	}
}

// pauseAfterConnLost waits before attempt+1 of a statement whose
// connection was lost, and reports false when ctx ended meanwhile.
func (db *DB) pauseAfterConnLost(ctx context.Context, attempt int, err error) bool {
	db.logger.Debug("store: connection lost, trying again", "attempt", attempt, "err", err)
	t := time.NewTimer(time.Duration(attempt*attempt) * 5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// txn is a write transaction whose helpers rebind placeholders.
type txn struct {
	tx *sql.Tx
	db *DB
}

func (t *txn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.rebind(q), args...)
}

func (t *txn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.rebind(q), args...)
}

func (t *txn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.rebind(q), args...)
}

// writeTx runs fn in a write transaction and commits it when fn returns nil.
// On SQLite the transaction holds the database's write lock from BEGIN, so
// concurrent writers (also in other processes) queue instead of deadlocking.
// A retryable failure (serialisation failure, deadlock, busy database, a
// connection lost before COMMIT) rolls back and runs fn again, a few times;
// fn must be safe to repeat. A connection lost during COMMIT is returned
// as an error wrapping ErrOutcomeUnknown and not retried: the transaction
// may have been committed.
func (db *DB) writeTx(ctx context.Context, fn func(*txn) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.tryTx(ctx, fn)
		if err == nil || !isRetryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			db.noteWrite(err)
			return unavailable(err)
		}
		db.logger.Debug("store: retrying transaction", "attempt", attempt, "err", err)
		t := time.NewTimer(time.Duration(attempt*attempt) * 5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			db.noteWrite(err)
			return unavailable(err)
		case <-t.C:
		}
	}
}

func (db *DB) tryTx(ctx context.Context, fn func(*txn) error) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(&txn{tx: tx, db: db}); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		if isConnLost(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &commitError{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)}
		}
		return &commitError{err: err}
	}
	return nil
}

// RegisterMetrics registers the connection pools' statistics
// (go_sql_*{db_name="thiqa"|"thiqa-read"}) on reg.
func (db *DB) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(collectors.NewDBStatsCollector(db.w, "thiqa")); err != nil {
		return fmt.Errorf("store: registering metrics: %w", err)
	}
	if db.r != db.w {
		if err := reg.Register(collectors.NewDBStatsCollector(db.r, "thiqa-read")); err != nil {
			return fmt.Errorf("store: registering metrics: %w", err)
		}
	}
	return nil
}
