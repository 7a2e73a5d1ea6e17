package store

import (
	"context"
	"fmt"
	"strings"
)

// LeaveFreePages writes about n KiB into a table of its own and drops
// it, leaving free pages in a SQLite file, as an archive's deletes do.
func (db *DB) LeaveFreePages(ctx context.Context, n int) error {
	if _, err := db.w.ExecContext(ctx, "CREATE TABLE compact_test_junk (b TEXT)"); err != nil {
		return err
	}
	row := strings.Repeat("x", 1024)
	for i := 0; i < n; i++ {
		if _, err := db.w.ExecContext(ctx, "INSERT INTO compact_test_junk (b) VALUES ($1)", row); err != nil {
			return err
		}
	}
	_, err := db.w.ExecContext(ctx, "DROP TABLE compact_test_junk")
	return err
}

// LeaveLivePages writes about n KiB into a table of its own that stays,
// in one statement, and truncates the write-ahead log: live data VACUUM
// copies, on a disk that holds little more than the file.
func (db *DB) LeaveLivePages(ctx context.Context, n int) error {
	for _, q := range []string{
		"CREATE TABLE compact_test_live (b BLOB)",
		fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) INSERT INTO compact_test_live (b) SELECT randomblob(1024) FROM c", n),
		"PRAGMA wal_checkpoint(TRUNCATE)",
	} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// SetWriterBusyTimeout sets the writer connection's busy_timeout, so that
// a test of what a busy database does need not wait the real one.
func (db *DB) SetWriterBusyTimeout(ctx context.Context, ms int) error {
	_, err := db.w.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", ms))
	return err
}
