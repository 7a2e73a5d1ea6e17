package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// auditCompact is `thiqa audit compact --data DIR`: a SQLite store gives
// the space its archived records left back to the disk
// (store.DB.CompactSQLite), with thiqa serve stopped (the data folder's
// exclusive lock), after an audit record saying so.
func auditCompact(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("audit compact", env)
	dir := fs.String("data", "", "data folder (required); thiqa serve must be stopped")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != store.DriverSQLite {
		return withExit(2, errors.New("audit compact is for a SQLite store: PostgreSQL's autovacuum reuses the space archived records leave (VACUUM FULL audit_log gives it back to the disk, under an exclusive lock your DBA plans)"))
	}
	release, err := backup.LockFolder(cfg.Dir(), true)
	if err != nil {
		return fmt.Errorf("audit compact needs the database to itself: %w", err)
	}
	defer release()
	p, closeAll, err := openHeldStore(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	before, err := p.db.SQLiteSpace(ctx)
	if err != nil {
		return err
	}
	if err := p.db.CompactRoom(before); err != nil {
		return err
	}
	dsn, err := cfg.StoreDSN()
	if err != nil {
		return err
	}
	if _, err := p.audit.Append(ctx, audit.Entry{Actor: operatorName(), Action: "store.compact", Object: dsn, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"bytes": before.Bytes, "freeBytes": before.FreeBytes}}); err != nil {
		return fmt.Errorf("recording the compaction (nothing was changed): %w", err)
	}
	start := time.Now()
	if err := p.db.CompactSQLite(ctx); err != nil {
		return err
	}
	after, err := p.db.SQLiteSpace(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "audit compact: %s from %s to %s (%s of free pages given back) in %s\n",
		dsn, mib(before.Bytes), mib(after.Bytes), mib(before.FreeBytes), time.Since(start).Round(time.Millisecond))
	return nil
}

// sqliteSpaceNote says, after an archive on a SQLite store, that the file
// keeps its size and how to give the space back; nothing for PostgreSQL.
func sqliteSpaceNote(ctx context.Context, env *cliEnv, db *store.DB, dir string) {
	space, err := db.SQLiteSpace(ctx)
	if err != nil || space.FreeBytes == 0 {
		return
	}
	fmt.Fprintf(env.stdout, "audit archive: the SQLite file keeps its size (%s): its %s of free pages hold the next records; to give them back to the disk, stop thiqa serve and run: thiqa audit compact --data %s\n",
		mib(space.Bytes), mib(space.FreeBytes), dir)
}

// mib shows a size in MiB, one decimal, or in KiB below 1 MiB (a few
// freed pages would otherwise read "0.0 MiB").
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
