package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// Ways LoseCommits loses a COMMIT.
const (
	CommitKept       int32 = iota // COMMIT as usual
	CommitLostDone                // COMMIT took effect, reported as a lost connection
	CommitLostUndone              // rolled back, reported as a lost connection
	// CommitLostLate is reported as a lost connection at once, and the
	// COMMIT reaches the server LateCommit later (and takes effect): a
	// look right after the loss runs before the server has committed.
	CommitLostLate
)

// LateCommit is how long after its loss a CommitLostLate COMMIT is sent.
const LateCommit = 300 * time.Millisecond

// LoseCommits makes the COMMITs of db (PostgreSQL) fail as when the
// connection drops while the server commits, as mode (Commit*) says:
// driver.ErrBadConn once the transaction took effect, or once it was
// rolled back; the caller cannot tell which. It returns mode, CommitKept.
func (db *DB) LoseCommits(ctx context.Context, dsn string) (*atomic.Int32, error) {
	if db.dialect != DriverPostgres {
		return nil, errors.New("LoseCommits: PostgreSQL only (SQLite commits in the process)")
	}
	mode := new(atomic.Int32)
	w := sql.OpenDB(lostCommitConnector{dsn: dsn, mode: mode})
	w.SetMaxOpenConns(4)
	old, stmts := db.w, db.auditSQL
	db.w, db.r = w, w
	if err := db.prepareAudit(ctx); err != nil {
		return nil, err
	}
	for _, s := range []*sql.Stmt{stmts.head, stmts.moveHead, stmts.insertOne} {
		if s != nil {
			_ = s.Close()
		}
	}
	return mode, old.Close()
}

type lostCommitConnector struct {
	dsn  string
	mode *atomic.Int32
}

func (c lostCommitConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := stdlib.GetDefaultDriver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		return nil, fmt.Errorf("LoseCommits: pgx connection %T", conn)
	}
	return lostCommitConn{Conn: pc, mode: c.mode, late: new(atomic.Bool)}, nil
}

func (c lostCommitConnector) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// lostCommitConn is a pgx connection whose transactions lose their COMMIT.
type lostCommitConn struct {
	*stdlib.Conn
	mode *atomic.Int32
	late *atomic.Bool // a CommitLostLate COMMIT is under way: it closes the connection
}

func (c lostCommitConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return lostCommitTx{Tx: tx, mode: c.mode, conn: c}, nil
}

// Close closes the connection, unless a late COMMIT still uses it.
func (c lostCommitConn) Close() error {
	if c.late.Load() {
		return nil
	}
	return c.Conn.Close()
}

// PrepareContext prepares a statement that Close leaves alone while a late
// COMMIT uses the connection (it closes the connection, and they go).
func (c lostCommitConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ps, ok := st.(*stdlib.Stmt)
	if !ok {
		return nil, fmt.Errorf("LoseCommits: pgx statement %T", st)
	}
	return lostCommitStmt{Stmt: ps, late: c.late}, nil
}

// Prepare is PrepareContext.
func (c lostCommitConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

type lostCommitStmt struct {
	*stdlib.Stmt
	late *atomic.Bool
}

func (s lostCommitStmt) Close() error {
	if s.late.Load() {
		return nil
	}
	return s.Stmt.Close()
}

type lostCommitTx struct {
	driver.Tx
	mode *atomic.Int32
	conn lostCommitConn
}

func (tx lostCommitTx) Commit() error {
	switch tx.mode.Load() {
	case CommitLostLate:
		tx.conn.late.Store(true)
		go func() {
			time.Sleep(LateCommit)
			_ = tx.Tx.Commit()
			_ = tx.conn.Conn.Close()
		}()
		return driver.ErrBadConn
	case CommitLostDone:
		if err := tx.Tx.Commit(); err != nil {
			return err
		}
		return driver.ErrBadConn
	case CommitLostUndone:
		_ = tx.Tx.Rollback()
		return driver.ErrBadConn
	}
	return tx.Tx.Commit()
}
