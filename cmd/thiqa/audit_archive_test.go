package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAuditArchiveEndToEnd: `thiqa audit archive` moves what init recorded
// (up to its checkpoint) to a file, `audit verify` then starts from the
// archived range and `audit verify --archive` checks the file offline; a
// backup of the archived folder restores and verifies; bad usage exits 2,
// refusals exit 1.
func TestAuditArchiveEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cpFile, key := filepath.Join(dir, "audit", "checkpoints.jsonl"), filepath.Join(dir, "audit", "checkpoint-key.pem")
	m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, cpFile))
	if m == nil {
		t.Fatalf("no checkpoint after init: %s", mustRead(t, cpFile))
	}
	out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
	for _, args := range [][]string{
		{"--data", dir, "--through", m[1]},
		{"--data", dir, "--through", m[1], "--before", "2026-01-01T00:00:00Z", "--out", out},
		{"--data", dir, "--out", out},
		{"--data", dir, "--before", "yesterday", "--out", out},
		{"--data", dir, "--file-lost", "--through", m[1], "--out", out},
		{"--data", dir, "--file-lost"},
	} {
		if r := thiqa(t, nil, append([]string{"audit", "archive"}, args...)...); r.code != 2 {
			t.Fatalf("audit archive %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	if r := thiqa(t, nil, "audit", "archive", "--data", dir, "--through", "1000000", "--out", out); r.code != 1 || !strings.Contains(errorLine(t, r), "past the newest record") {
		t.Fatalf("audit archive past the head: exit %d\n%s", r.code, r.stderr)
	}
	if r := thiqa(t, nil, "audit", "archive", "--data", dir, "--file-lost", "--out", out); r.code != 1 || !strings.Contains(errorLine(t, r), "no archive is unfinished") {
		t.Fatalf("audit archive --file-lost with nothing unfinished: exit %d\n%s", r.code, r.stderr)
	}
	if r := thiqa(t, nil, "audit", "archive", "--data", dir, "--through", "1", "--out", out); r.code != 1 || !strings.Contains(errorLine(t, r), "no signed checkpoint") {
		t.Fatalf("audit archive without a checkpoint: exit %d\n%s", r.code, r.stderr)
	}

	r := mustThiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out)
	if !strings.Contains(r.stdout, "audit archive: "+m[1]+" records, seq 1 to "+m[1]+", in "+out+" (SHA-256 ") {
		t.Fatalf("audit archive: %s", r.stdout)
	}
	v := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	if !strings.Contains(v.stdout, "records 1 to "+m[1]+" are archived in audit-1.jsonl.gz") || !strings.Contains(v.stdout, "audit chain OK: 1 records") {
		t.Fatalf("audit verify after the archive: %s", v.stdout)
	}
	if v := mustThiqa(t, nil, "audit", "verify", "--archive", out, "--checkpoint-key", key); !strings.Contains(v.stdout, "audit archive OK: ") {
		t.Fatalf("audit verify --archive: %s", v.stdout)
	}
	// With the data folder, the files must be exactly the archived ranges.
	if v := mustThiqa(t, nil, "audit", "verify", "--archive", out, "--data", dir); !strings.Contains(v.stdout, "audit archives OK: the 1 files given are the 1 archived ranges") {
		t.Fatalf("audit verify --archive --data: %s", v.stdout)
	}
	if r := thiqa(t, nil, "audit", "verify", "--archive", out, "--data", dir, "--since", "1"); r.code != 2 {
		t.Fatalf("audit verify --archive --data --since: exit %d", r.code)
	}
	if r := thiqa(t, nil, "audit", "verify", "--archive", out, "--checkpoints", filepath.Join(dir, "x")); r.code != 2 {
		t.Fatalf("audit verify --archive --checkpoints without --data: exit %d", r.code)
	}
	if r := mustThiqa(t, nil, "audit", "report", "--data", dir); !strings.Contains(r.stdout, "note: records 1 to "+m[1]+" are archived") {
		t.Fatalf("audit report after the archive: %s", r.stdout)
	}
	if r := mustThiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out); !strings.Contains(r.stdout, "already holds records 1 to "+m[1]) {
		t.Fatalf("audit archive again: %s", r.stdout)
	}
	// A damaged file: exit 1.
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl.gz")
	writeFile(t, bad, string(raw[:len(raw)-10]))
	if r := thiqa(t, nil, "audit", "verify", "--archive", bad); r.code != 1 || !strings.Contains(r.stdout, "audit archive BROKEN") {
		t.Fatalf("audit verify --archive of a damaged file: exit %d\n%s", r.code, r.stdout)
	}
	if r := thiqa(t, nil, "audit", "verify", "--data", dir, "--archive", bad); r.code != 1 || !strings.Contains(r.stdout, "audit archive BROKEN") {
		t.Fatalf("audit verify --data --archive of a damaged file: exit %d\n%s", r.code, r.stdout)
	}

	// A backup of the archived folder restores, and the restored log verifies.
	backup := filepath.Join(t.TempDir(), "b.tar.gz")
	mustThiqa(t, nil, "backup", "--data", dir, "--out", backup)
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, "tokens"), restored)
	copyTree(t, filepath.Join(dir, "secrets"), restored)
	res := mustThiqa(t, nil, "restore", "--in", backup, "--data", restored)
	if !strings.Contains(res.stdout, "audit chain OK") || strings.Contains(res.stdout, "checkpoints.archived-") {
		t.Fatalf("restore of an archived deployment:\n%s", res.stdout)
	}
	if v := mustThiqa(t, nil, "audit", "verify", "--data", restored); !strings.Contains(v.stdout, "records 1 to "+m[1]+" are archived") {
		t.Fatalf("audit verify of the restored folder: %s", v.stdout)
	}
}

// TestAuditArchiveWaitsForNotifier: with the notifier behind (a cursor row
// at 0), `thiqa audit archive` refuses, exit 1 like its other refusals,
// naming the records not notified yet; --skip-undelivered archives them
// and says how many; with --file-lost it is a usage error (exit 2).
func TestAuditArchiveWaitsForNotifier(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cpFile := filepath.Join(dir, "audit", "checkpoints.jsonl")
	m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, cpFile))
	if m == nil {
		t.Fatalf("no checkpoint after init: %s", mustRead(t, cpFile))
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("INSERT INTO notify_state (name, cursor_seq, holder, lease_until) VALUES ('audit', 0, 'node-1', 0)")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
	if r := thiqa(t, nil, "audit", "archive", "--data", dir, "--file-lost", "--skip-undelivered", "--out", out); r.code != 2 {
		t.Fatalf("audit archive --file-lost --skip-undelivered: exit %d\n%s", r.code, r.stderr)
	}
	r := thiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out)
	if r.code != 1 || !strings.Contains(errorLine(t, r), "records 1 to "+m[1]+" have not been notified yet") {
		t.Fatalf("audit archive past the notifier: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a file was written: %v", err)
	}
	r = mustThiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out, "--skip-undelivered")
	if !strings.Contains(r.stdout, "audit archive: "+m[1]+" records were archived before the notifier reached them (--skip-undelivered)") {
		t.Fatalf("audit archive --skip-undelivered: %s", r.stdout)
	}
	mustThiqa(t, nil, "audit", "verify", "--data", dir, "--archive", out)
}

// TestAuditArchiveBeforeStopsNotifyOff: `thiqa audit archive --before`
// that stops at the notifier's cursor while notifications are off
// (notify.enabled false, a cursor left from when they were on) says that
// nothing will move the cursor (turn them on, or --skip-undelivered for
// the rest) rather than "run the archive again later", which would only
// be refused.
func TestAuditArchiveBeforeStopsNotifyOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	mustThiqa(t, nil, "init", "--data", dir) // a second checkpoint, further on
	cpFile := filepath.Join(dir, "audit", "checkpoints.jsonl")
	seqs := regexp.MustCompile(`"seq":(\d+),`).FindAllStringSubmatch(mustRead(t, cpFile), -1)
	if len(seqs) < 2 || seqs[0][1] == seqs[len(seqs)-1][1] {
		t.Fatalf("want two checkpoints after two inits: %s", mustRead(t, cpFile))
	}
	first := seqs[0][1]
	db, err := sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("INSERT INTO notify_state (name, cursor_seq, holder, lease_until) VALUES ('audit', " + first + ", 'node-1', 0)")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
	r := mustThiqa(t, nil, "audit", "archive", "--data", dir, "--before", "2100-01-01T00:00:00Z", "--out", out)
	if !strings.Contains(r.stdout, "seq 1 to "+first+",") ||
		!strings.Contains(r.stdout, "audit archive: stopped at record "+first+": notifications to citizens are off (notify.enabled)") ||
		!strings.Contains(r.stdout, "--skip-undelivered") || strings.Contains(r.stdout, "run the archive again later") {
		t.Fatalf("audit archive --before stopped at the cursor, notifications off:\n%s", r.stdout)
	}
}
