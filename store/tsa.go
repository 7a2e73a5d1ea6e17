package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/thiqa/thiqa/timestamp"
)

// The serial counters implement the TSA's block reservations.
var _ timestamp.SerialBlockStore = (*SerialBlocks)(nil)

// maxSerialBlock bounds one reservation.
const maxSerialBlock = 1 << 30

// SerialBlocks reserves blocks of time-stamp token serial numbers
// (timestamp.SerialBlockStore) from the tsa_serial_counters table.
type SerialBlocks struct {
	db *DB
}

// SerialBlocks returns the TSA's serial block store.
func (db *DB) SerialBlocks() *SerialBlocks { return &SerialBlocks{db: db} }

// ReserveBlock advances the counter name by size and returns the first
// serial of the reserved range [first, first+size). The counter starts at 1.
// The read and the advance happen in one write transaction: on SQLite it
// holds the database's write lock from BEGIN, on PostgreSQL the UPDATE takes
// the row lock and re-reads the committed value, so two instances never get
// overlapping ranges.
func (s *SerialBlocks) ReserveBlock(ctx context.Context, name string, size int64) (int64, error) {
	if name == "" {
		return 0, errors.New("store: serial counter name is empty")
	}
	if size < 1 || size > maxSerialBlock {
		return 0, fmt.Errorf("store: serial block size %d out of range", size)
	}
	var first int64
	err := s.db.writeTx(ctx, func(t *txn) error {
		now := time.Now().UnixNano()
		if _, err := t.exec(ctx, `INSERT INTO tsa_serial_counters (name, next_serial, updated_at) VALUES (?, 1, ?)
	ON CONFLICT (name) DO NOTHING`, name, now); err != nil {
			return mapErr("store: creating serial counter", err)
		}
		// The guard keeps next_serial + size within a signed 64-bit integer.
		var next int64
		err := t.queryRow(ctx, `UPDATE tsa_serial_counters SET next_serial = next_serial + ?, updated_at = ?
	WHERE name = ? AND next_serial <= ? RETURNING next_serial`, size, now, name, math.MaxInt64-size).Scan(&next)
		if errors.Is(mapErr("", err), ErrNotFound) {
			return fmt.Errorf("store: serial counter %q is exhausted", name)
		}
		if err != nil {
			return mapErr("store: advancing serial counter", err)
		}
		first = next - size
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reserving %d serials from %q: %w", size, name, err)
	}
	return first, nil
}

// NextSerial returns the next serial counter name has not handed out
// (1 when it was never used), for operators and tests.
func (s *SerialBlocks) NextSerial(ctx context.Context, name string) (int64, error) {
	var next int64
	err := s.db.queryRow(ctx, "SELECT next_serial FROM tsa_serial_counters WHERE name = ?", name).Scan(&next)
	if errors.Is(mapErr("", err), ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, mapErr("store: reading serial counter", err)
	}
	return next, nil
}
