package store

import (
	"context"
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
