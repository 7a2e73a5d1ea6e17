package store_test

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

func TestSerialBlocks(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			sb := db.SerialBlocks()

			if n, err := sb.NextSerial(ctx, "unit"); err != nil || n != 1 {
				t.Fatalf("NextSerial of a new counter = %d, %v; want 1", n, err)
			}
			first, err := sb.ReserveBlock(ctx, "unit", 10)
			if err != nil || first != 1 {
				t.Fatalf("first block = %d, %v; want 1", first, err)
			}
			if first, err = sb.ReserveBlock(ctx, "unit", 5); err != nil || first != 11 {
				t.Fatalf("second block = %d, %v; want 11", first, err)
			}
			// Counters are independent.
			if first, err = sb.ReserveBlock(ctx, "other", 3); err != nil || first != 1 {
				t.Fatalf("other counter = %d, %v; want 1", first, err)
			}
			for _, size := range []int64{0, -1, 1<<30 + 1} {
				if _, err := sb.ReserveBlock(ctx, "unit", size); err == nil {
					t.Errorf("ReserveBlock(size %d) succeeded", size)
				}
			}
			if _, err := sb.ReserveBlock(ctx, "", 1); err == nil {
				t.Error("ReserveBlock with an empty name succeeded")
			}
			if n, _ := sb.NextSerial(ctx, "unit"); n != 16 {
				t.Fatalf("NextSerial after refused reservations = %d, want 16", n)
			}

			// A counter near the end of int64 refuses instead of wrapping.
			if err := db.ExecTx(ctx, "UPDATE tsa_serial_counters SET next_serial = ? WHERE name = 'other'", int64(math.MaxInt64-5)); err != nil {
				t.Fatal(err)
			}
			if _, err := sb.ReserveBlock(ctx, "other", 10); err == nil || !strings.Contains(err.Error(), "exhausted") {
				t.Fatalf("reservation past int64: %v", err)
			}
			if first, err := sb.ReserveBlock(ctx, "other", 5); err != nil || first != math.MaxInt64-5 {
				t.Fatalf("last block = %d, %v", first, err)
			}
		})
	}
}

// Two handles on one database (as two instances on one PostgreSQL, or two
// processes on one SQLite file) reserve concurrently: the ranges never
// overlap and leave no gap.
func TestSerialBlocksConcurrentInstances(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			dbs := []*store.DB{storetest.Open(t, cfg), storetest.Open(t, cfg)}
			const workers, each, size = 4, 15, 7
			var mu sync.Mutex
			var firsts []int64
			var wg sync.WaitGroup
			errs := make(chan error, len(dbs)*workers)
			for _, db := range dbs {
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range each {
							f, err := db.SerialBlocks().ReserveBlock(ctx, "tsa", size)
							if err != nil {
								errs <- err
								return
							}
							mu.Lock()
							firsts = append(firsts, f)
							mu.Unlock()
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			slices.Sort(firsts)
			for i, f := range firsts {
				if want := int64(1 + i*size); f != want {
					t.Fatalf("block %d starts at %d, want %d (overlap or gap): %v", i, f, want, firsts)
				}
			}
		})
	}
}

// BlockAllocators of two instances over one store hand out distinct serials,
// also after a "restart" (a new allocator on the same counter).
func TestBlockAllocatorsShareStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			seen := map[int64]bool{}
			var mu sync.Mutex
			draw := func(db *store.DB, n int) {
				a, err := timestamp.NewBlockAllocator(db.SerialBlocks(), "unit", 16)
				if err != nil {
					t.Error(err)
					return
				}
				for range n {
					s, err := a.Next(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[s.Int64()] {
						t.Errorf("serial %d handed out twice", s)
					}
					seen[s.Int64()] = true
					mu.Unlock()
				}
			}
			a, b := storetest.Open(t, cfg), storetest.Open(t, cfg)
			var wg sync.WaitGroup
			for _, db := range []*store.DB{a, b, a, b} {
				wg.Add(1)
				go func() { defer wg.Done(); draw(db, 100) }()
			}
			wg.Wait()
			draw(storetest.Open(t, cfg), 50) // a restarted instance
			if len(seen) != 450 {
				t.Fatalf("%d distinct serials, want 450", len(seen))
			}
		})
	}
}
