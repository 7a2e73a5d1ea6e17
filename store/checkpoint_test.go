package store

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWALCheckpointer: the SQLite writer does not checkpoint inside its
// commits (wal_autocheckpoint only a far backstop), and the background checkpointer keeps the
// WAL bounded while far more than the bound is written through it.
func TestWALCheckpointer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "thiqa.db")
	db, err := Open(ctx, Config{Driver: DriverSQLite, DSN: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var auto int
	if err := db.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != walAutocheckpointBackstop {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want %d", auto, err, walAutocheckpointBackstop)
	}
	var limit int64
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != walSizeLimit {
		t.Fatalf("writer journal_size_limit = %d, %v; want %d", limit, err, walSizeLimit)
	}
	if db.ckpt == nil {
		t.Fatal("no checkpointer on SQLite")
	}
	var busy int64
	if err := db.ckpt.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != walCheckpointerBusyTimeout.Milliseconds() {
		t.Fatalf("checkpointer busy_timeout = %d, %v", busy, err)
	}
	// A lower restart threshold than the server's, so that a short test
	// writes several times the bound through the WAL.
	db.ckpt.restartBytes.Store(8 << 20)
	if err := db.ExecTx(ctx, "CREATE TABLE ckpt_test (id INTEGER PRIMARY KEY, v BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	// Commits at about the TSA's full rate (4,000 a second, each writing
	// a few 4 KiB pages into the WAL) put over 100 MB through it (7 KB a commit here).
	const commits = 16000
	// Under the race detector the writer and the checkpointer run several
	// times slower, so RESTARTs time out and back off where a server's do
	// not: only the writer's backstop (wal_autocheckpoint) bounds the WAL.
	bound := int64(40 << 20)
	if raceBuild {
		bound = walAutocheckpointBackstop*walPageBytes + 8<<20
	}
	blob := []byte(strings.Repeat("x", 3000))
	var maxWAL int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := range commits {
		if i%4 == 0 {
			<-tick.C
		}
		if err := db.ExecTx(ctx, "INSERT INTO ckpt_test (v) VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if fi, err := os.Stat(path + "-wal"); err == nil {
				maxWAL = max(maxWAL, fi.Size())
			}
		}
	}
	t.Logf("largest WAL seen: %.1f MB after %d commits", float64(maxWAL)/(1<<20), commits)
	if maxWAL > bound {
		t.Fatalf("the WAL grew to %d bytes (bound %d)", maxWAL, bound)
	}
	// Everything written is readable (from the checkpointed file and the WAL).
	n, err := db.QueryInt64(ctx, "SELECT count(*) FROM ckpt_test")
	if err != nil || n != commits {
		t.Fatalf("%d rows, %v", n, err)
	}
	// Close stops the checkpointer.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.ckpt.done:
	default:
		t.Fatal("the checkpointer still runs after Close")
	}
}

// TestWALCheckpointerLongReader: a read transaction that keeps the old
// WAL in use makes a RESTART checkpoint wait; it gives up after
// walCheckpointerBusyTimeout and the next is tried walRestartBackoff
// later, so writes are held back briefly and rarely, not for as long as
// the reader reads.
func TestWALCheckpointerLongReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "thiqa.db")
	db, err := Open(ctx, Config{Driver: DriverSQLite, DSN: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.ckpt.restartBytes.Store(1 << 20)
	if err := db.ExecTx(ctx, "CREATE TABLE ckpt_test (id INTEGER PRIMARY KEY, v BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	blob := []byte(strings.Repeat("x", 3000))
	for range 500 { // past the restart threshold before the reader starts
		if err := db.ExecTx(ctx, "INSERT INTO ckpt_test (v) VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
	}
	rtx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM ckpt_test").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	held := 0 // commits that waited for a RESTART (over 40 ms)
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		t0 := time.Now()
		if err := db.ExecTx(ctx, "INSERT INTO ckpt_test (v) VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		worst = max(worst, d)
		if d > 40*time.Millisecond {
			held++
		}
		time.Sleep(time.Millisecond)
	}
	rtx.Rollback()
	t.Logf("while a reader held the WAL for 2 s: worst commit %v, %d commits held back", worst, held)
	if worst > time.Second {
		t.Fatalf("a commit waited %v behind a RESTART checkpoint", worst)
	}
	// One RESTART gives up, the next waits walRestartBackoff: not one
	// held-back commit every tick.
	if held > 3 {
		t.Fatalf("%d commits held back by RESTART attempts in 2 s", held)
	}
}

// TestWALCheckpointerLogsFailuresOnce: a checkpoint that fails at every
// tick (a full disk: the database file cannot grow) is logged when the
// failures begin and when they end, not four times a second.
func TestWALCheckpointerLogsFailuresOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thiqa.db")
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // every checkpoint fails: the connection pool is closed
	var logs bytes.Buffer
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	ck := &checkpointer{db: c, interval: time.Millisecond, cancel: cancel, done: make(chan struct{}),
		logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), nil))}
	ck.restartBytes.Store(walRestartSize)
	go ck.run(ctx)
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-ck.done
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "WAL checkpoint failed"); n != 1 {
		t.Errorf("%d lines for a run of failed checkpoints, want 1:\n%s", n, logs.String())
	}
}

// writerFunc is an io.Writer of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
