package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
)

// TestAuditCompactCommand: after `thiqa audit archive` on a SQLite store
// the archive says the file keeps its size and names `thiqa audit
// compact`, which gives the free pages back to the disk after recording
// store.compact, and is refused while a server holds the data folder (its
// shared lock); the log still verifies afterwards.
func TestAuditCompactCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, filepath.Join(dir, "audit", "checkpoints.jsonl")))
	if m == nil {
		t.Fatal("no checkpoint after init")
	}
	out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
	r := mustThiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out)
	if !regexp.MustCompile(`audit archive: the SQLite file keeps its size \([0-9.]+ [KM]iB\): its [1-9][0-9.]* KiB of free pages`).MatchString(r.stdout) || !strings.Contains(r.stdout, "stop thiqa serve and run: thiqa audit compact --data "+dir) {
		t.Fatalf("audit archive on SQLite does not say how to give the space back:\n%s", r.stdout)
	}

	// A running server holds the folder's shared lock.
	release, err := backup.LockFolder(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	c := thiqa(t, nil, "audit", "compact", "--data", dir)
	release()
	if c.code != 1 || !strings.Contains(errorLine(t, c), "audit compact needs the database to itself") || !strings.Contains(errorLine(t, c), "stop it first") {
		t.Fatalf("audit compact beside a server: exit %d\n%s", c.code, c.stderr)
	}
	if r := thiqa(t, nil, "audit", "compact"); r.code != 2 {
		t.Fatalf("audit compact without --data: exit %d", r.code)
	}

	c = mustThiqa(t, nil, "audit", "compact", "--data", dir)
	if !regexp.MustCompile(`audit compact: \S+thiqa\.db from [0-9.]+ [KM]iB to [0-9.]+ [KM]iB \([0-9.]+ [KM]iB of free pages given back\) in `).MatchString(c.stdout) {
		t.Fatalf("audit compact: %s", c.stdout)
	}
	if f := mustThiqa(t, nil, "audit", "find", "--data", dir, "--action", "store.compact", "--json"); !strings.Contains(f.stdout, `"action":"store.compact"`) || !strings.Contains(f.stdout, `freeBytes`) {
		t.Fatalf("no store.compact record: %s", f.stdout)
	}
	if v := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(v.stdout, "audit chain OK") {
		t.Fatalf("audit verify after compaction: %s", v.stdout)
	}
}
