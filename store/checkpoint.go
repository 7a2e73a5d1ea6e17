package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"
)

// WAL checkpoints on SQLite. By default SQLite checkpoints inside the
// commit that takes the WAL past 1,000 pages: that commit copies the pages
// into the database file and fsyncs both files, about 10 ms here, and every
// group-committed audit record (so every time-stamp token) waiting for it
// waits as long. The writer connection therefore runs with
// wal_autocheckpoint raised out of reach (a backstop only), and a goroutine of its own checkpoints every
// walCheckpointInterval on a connection of its own, in PASSIVE mode: it
// copies the WAL into the database and does the expensive fsyncs without
// waiting for, or blocking, the writer and the readers.
//
// Under a constant stream of commits a PASSIVE checkpoint never catches up
// with the writer, so the WAL would never be started again from its
// beginning and would grow without end. When the WAL passes walRestartSize
// the checkpointer follows the PASSIVE checkpoint with a RESTART one: it
// holds the writer back only while it copies the few frames written since
// the PASSIVE one and syncs (a few milliseconds), and the next commit
// starts the WAL again from the beginning. A RESTART also waits for
// readers still using the old WAL, holding writers back meanwhile, so it
// gives up after walCheckpointerBusyTimeout and is tried again at the
// next tick. The WAL file thus stays below
// walRestartSize plus what is written in one interval, and
// journal_size_limit truncates it back to walSizeLimit when it is reused.

const (
	// walCheckpointInterval is how often the checkpointer runs.
	walCheckpointInterval = 250 * time.Millisecond
	// walSizeLimit is journal_size_limit: the size a reused WAL file is
	// truncated to (above walRestartSize, so that the file is not cut and
	// grown again on every cycle).
	walSizeLimit = 48 << 20
	// walRestartSize is the WAL size (bytes) beyond which a RESTART
	// checkpoint follows the PASSIVE one. A RESTART holds the writer back
	// for a few milliseconds (two fsyncs); at the TSA's half load (about
	// 6 MB of WAL a second) this happens every five seconds or so.
	walRestartSize = 32 << 20
	// walRestartBackoff is how long the checkpointer waits before trying a
	// RESTART again after one gave up.
	walRestartBackoff = 2 * time.Second
	// walPageBytes approximates a WAL frame (page + frame header) to turn
	// the frame count wal_checkpoint reports into bytes.
	walPageBytes = 4096 + 24
)

// walCheckpointerBusyTimeout bounds how long a RESTART checkpoint waits
// for the writer and for readers of the old WAL. While it waits it holds
// new writers back, so it gives up early (and tries again at the next
// tick) rather than stall the audit log behind a long read.
const walCheckpointerBusyTimeout = 50 * time.Millisecond

// walCheckpointerQuery is the checkpointer connection's DSN query: the
// common one with the short busy timeout.
func walCheckpointerQuery(common url.Values) url.Values {
	q := url.Values{}
	for k, v := range common {
		q[k] = v
	}
	q.Set("_busy_timeout", fmt.Sprint(walCheckpointerBusyTimeout.Milliseconds()))
	return q
}

// walAutocheckpointBackstop is the writer's wal_autocheckpoint (pages,
// about 128 MiB): far beyond what the checkpointer lets the WAL reach, so
// it never fires while the checkpointer works, but it bounds the WAL
// should the checkpointer keep failing.
const walAutocheckpointBackstop = 32768

// walWriterPragmas are added to the SQLite writer connection's DSN.
func walWriterPragmas(q url.Values) {
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpointBackstop))
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
}

// checkpointer runs WAL checkpoints on its own connection until stopped.
type checkpointer struct {
	db       *sql.DB
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
	logger   *slog.Logger
	// restartBytes is walRestartSize (tests lower it).
	restartBytes atomic.Int64
}

// startCheckpointer opens the checkpointer's connection (dsn: the
// database without query_only) and starts its goroutine.
func (db *DB) startCheckpointer(ctx context.Context, dsn string, interval time.Duration) error {
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("store: sqlite: opening the checkpointer connection: %w", err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxIdleTime(0)
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return fmt.Errorf("store: sqlite: opening the checkpointer connection: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	db.ckpt = &checkpointer{db: c, interval: interval, cancel: cancel, done: make(chan struct{}), logger: db.logger}
	db.ckpt.restartBytes.Store(walRestartSize)
	go db.ckpt.run(runCtx)
	return nil
}

// stop ends the goroutine and closes the connection.
func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	var restartAfter time.Time // no RESTART before, after one gave up
	var failing int            // checkpoints failed in a row
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		frames, _, err := c.timed(ctx, "PASSIVE")
		if err == nil && int64(frames)*walPageBytes > c.restartBytes.Load() && time.Now().After(restartAfter) {
			var busy bool
			if _, busy, err = c.timed(ctx, "RESTART"); err == nil && busy {
				// A reader still uses the old WAL: let it finish rather
				// than hold writers back at every tick.
				restartAfter = time.Now().Add(walRestartBackoff)
				c.logger.Debug("store: WAL restart postponed: the WAL is in use", "frames", frames)
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			// Once per run of failures: a full disk fails every tick.
			if failing++; failing == 1 {
				c.logger.Warn("store: WAL checkpoint failed; the WAL grows until one succeeds (tried again every "+c.interval.String()+", logged once)", "err", err)
			}
		case err == nil && failing > 0:
			c.logger.Info("store: WAL checkpoints succeed again", "failed", failing)
			failing = 0
		}
	}
}

// timed runs a checkpoint and logs it when it was slow.
func (c *checkpointer) timed(ctx context.Context, mode string) (frames int, busy bool, err error) {
	start := time.Now()
	frames, busy, err = c.checkpoint(ctx, mode)
	if d := time.Since(start); err == nil && d > time.Second {
		c.logger.Info("store: slow WAL checkpoint", "mode", mode, "duration", d, "frames", frames)
	}
	return frames, busy, err
}

// checkpoint runs one checkpoint and returns the WAL's size in frames and
// whether it could not complete (a RESTART whose wait timed out).
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (frames int, busy bool, err error) {
	var b, done int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &frames, &done); err != nil {
		return 0, false, err
	}
	return frames, b != 0, nil
}
