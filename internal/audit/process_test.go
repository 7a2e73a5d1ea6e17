package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// Environment of TestHelperAppendProcess.
const (
	envHelperDriver  = "THIQA_AUDIT_HELPER_DRIVER"
	envHelperDSN     = "THIQA_AUDIT_HELPER_DSN"
	envHelperN       = "THIQA_AUDIT_HELPER_N"
	envHelperActor   = "THIQA_AUDIT_HELPER_ACTOR"
	envHelperBarrier = "THIQA_AUDIT_HELPER_BARRIER" // folder where the helpers meet before appending
)

// TestHelperAppendProcess is not a test by itself: testTwoProcesses runs
// the test binary twice with this test selected and the environment above
// set, and each process appends N records to the shared database.
func TestHelperAppendProcess(t *testing.T) {
	dsn := os.Getenv(envHelperDSN)
	if dsn == "" {
		return // run directly: nothing to do
	}
	n, err := strconv.Atoi(os.Getenv(envHelperN))
	if err != nil {
		t.Fatal(err)
	}
	actor := os.Getenv(envHelperActor)
	db := storetest.Open(t, store.Config{Driver: os.Getenv(envHelperDriver), DSN: dsn})
	l := newLog(t, db, nil)

	// Barrier: say we are ready, wait until both helpers are.
	barrier := os.Getenv(envHelperBarrier)
	if err := os.WriteFile(filepath.Join(barrier, actor), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if entries, _ := os.ReadDir(barrier); len(entries) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other helper process never got ready")
		}
	}
	start := time.Now()
	const writers = 4
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { appendN(t, l, n/writers, actor) })
	}
	wg.Wait()
	fmt.Printf("window %d %d\n", start.UnixNano(), time.Now().UnixNano())
}

func testTwoProcesses(t *testing.T, d storetest.Dialect) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg) // migrated before the helpers start, though they could migrate too
	const n = 1000
	barrier := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([][]byte, 2)
	for p := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppendProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(),
			envHelperDriver+"="+cfg.Driver, envHelperDSN+"="+cfg.DSN, envHelperN+"="+strconv.Itoa(n),
			envHelperActor+"="+fmt.Sprintf("process-%d", p), envHelperBarrier+"="+barrier)
		wg.Go(func() { outs[p], errs[p] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for p := range 2 {
		if errs[p] != nil {
			t.Fatalf("helper process %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	rep := verify(t, db)
	if !rep.OK() || rep.Verified != 2*n {
		t.Fatalf("Verify after two processes: %s; want %d records", rep, 2*n)
	}
	count := map[string]int{}
	switches, last := 0, ""
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		count[r.Actor]++
		if r.Actor != last {
			switches++
			last = r.Actor
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count["process-0"] != n || count["process-1"] != n {
		t.Fatalf("records per process: %v, want %d each", count, n)
	}
	// The processes appended at the same time: their windows overlap.
	var win [2][2]int64
	for p := range 2 {
		i := bytes.Index(outs[p], []byte("window "))
		if i < 0 {
			t.Fatalf("helper %d printed no window:\n%s", p, outs[p])
		}
		if _, err := fmt.Sscanf(string(outs[p][i:]), "window %d %d", &win[p][0], &win[p][1]); err != nil {
			t.Fatal(err)
		}
	}
	if win[0][0] >= win[1][1] || win[1][0] >= win[0][1] {
		t.Errorf("the helpers' append windows do not overlap: %v", win)
	}
	t.Logf("append windows overlap; the two processes' records interleave %d times", switches-1)
}
