package audit_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
	envHelperDriver = "THIQA_AUDIT_HELPER_DRIVER"
	envHelperDSN    = "THIQA_AUDIT_HELPER_DSN"
	envHelperN      = "THIQA_AUDIT_HELPER_N"
	envHelperActor  = "THIQA_AUDIT_HELPER_ACTOR"
	envHelperStart  = "THIQA_AUDIT_HELPER_START" // Unix nanoseconds to start appending at
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
	start, err := strconv.ParseInt(os.Getenv(envHelperStart), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t, store.Config{Driver: os.Getenv(envHelperDriver), DSN: dsn})
	l := newLog(t, db, nil)
	time.Sleep(time.Until(time.Unix(0, start)))
	const writers = 4
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { appendN(t, l, n/writers, os.Getenv(envHelperActor)) })
	}
	wg.Wait()
}

func testTwoProcesses(t *testing.T, d storetest.Dialect) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg) // migrated before the helpers start, though they could migrate too
	const n = 1000
	start := time.Now().Add(1500 * time.Millisecond).UnixNano()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([][]byte, 2)
	for p := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppendProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(),
			envHelperDriver+"="+cfg.Driver, envHelperDSN+"="+cfg.DSN, envHelperN+"="+strconv.Itoa(n),
			envHelperActor+"="+fmt.Sprintf("process-%d", p), envHelperStart+"="+strconv.FormatInt(start, 10))
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
	t.Logf("the two processes' records interleave %d times", switches-1)
	if switches < 3 {
		t.Errorf("the processes did not append concurrently (%d switches)", switches-1)
	}
}
