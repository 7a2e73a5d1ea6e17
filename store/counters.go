package store

import (
	"context"
	"fmt"
	"time"
)

// CounterRaise is one counter RaiseCounters moved forward.
type CounterRaise struct {
	// Table is tsa_serial_counters or crl_numbers.
	Table string
	// Name is the counter's name (the TSA counter, or the CA's name).
	Name string
	// From is the value before (0 for a counter that did not exist).
	From int64
	// To is the value after.
	To int64
}

// RaiseCounters moves every number-handing counter of the store up to at
// least floor, in one transaction: the next serial of each time-stamp
// token counter (tsa_serial_counters.next_serial) and the last number of
// each CA's CRLs (crl_numbers.last_number). Counters named in tsaCounters
// and crlIssuers that do not exist yet are created at floor: a restored
// database may lack a counter that was first used after its backup.
// A counter already at or past floor is left alone.
//
// A restore calls it: the restored counters are where they were at the
// backup, while the lost deployment went on handing out numbers after it.
func (db *DB) RaiseCounters(ctx context.Context, floor int64, tsaCounters, crlIssuers []string) ([]CounterRaise, error) {
	if floor < 1 {
		return nil, fmt.Errorf("store: counter floor %d must be positive", floor)
	}
	var out []CounterRaise
	err := db.writeTx(ctx, func(t *txn) error {
		out = out[:0]
		now := time.Now().UnixNano()
		for _, name := range tsaCounters {
			if _, err := t.exec(ctx, `INSERT INTO tsa_serial_counters (name, next_serial, updated_at) VALUES (?, 1, ?)
	ON CONFLICT (name) DO NOTHING`, name, now); err != nil {
				return fmt.Errorf("creating TSA counter %q: %w", name, err)
			}
		}
		for _, ca := range crlIssuers {
			if _, err := t.exec(ctx, `INSERT INTO crl_numbers (ca, last_number) VALUES (?, 0) ON CONFLICT (ca) DO NOTHING`, ca); err != nil {
				return fmt.Errorf("creating the CRL number of %q: %w", ca, err)
			}
		}
		for _, c := range []struct{ table, name, value string }{
			{"tsa_serial_counters", "name", "next_serial"},
			{"crl_numbers", "ca", "last_number"},
		} {
			rows, err := t.query(ctx, fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s < ? ORDER BY %s", c.name, c.value, c.table, c.value, c.name), floor)
			if err != nil {
				return fmt.Errorf("reading %s: %w", c.table, err)
			}
			var low []CounterRaise
			for rows.Next() {
				r := CounterRaise{Table: c.table, To: floor}
				if err := rows.Scan(&r.Name, &r.From); err != nil {
					rows.Close()
					return fmt.Errorf("reading %s: %w", c.table, err)
				}
				low = append(low, r)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", c.table, err)
			}
			for _, r := range low {
				if _, err := t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ? AND %s < ?", c.table, c.value, c.name, c.value), floor, r.Name, floor); err != nil {
					return fmt.Errorf("raising %s %q: %w", c.table, r.Name, err)
				}
			}
			out = append(out, low...)
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("store: raising counters", err)
	}
	return out, nil
}
