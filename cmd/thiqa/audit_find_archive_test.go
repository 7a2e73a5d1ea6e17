package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestAuditFindArchiveCommand: after `thiqa audit archive`, `thiqa audit
// find --archive FILE` finds the archived records with the live ones (the
// same output, order and limit, no note), records the file it read, and
// refuses (exit 2, nothing printed, nothing recorded) a file the database
// does not record, a damaged one, one that cannot be read (missing, a
// folder), and --archive without --data.
func TestAuditFindArchiveCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	db := filepath.Join(dir, "thiqa.db")
	m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, filepath.Join(dir, "audit", "checkpoints.jsonl")))
	if m == nil {
		t.Fatal("no checkpoint after init")
	}
	last, _ := strconv.Atoi(m[1])
	out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
	mustThiqa(t, nil, "audit", "archive", "--data", dir, "--through", m[1], "--out", out)

	// Without the file: record 1 is not found, the note says why.
	r := thiqa(t, nil, "audit", "find", "--data", dir, "--seq", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "note: records 1 to "+m[1]+" are archived (thiqa audit archive) and not searched here") {
		t.Fatalf("audit find --seq 1 without the file: exit %d\n%s", r.code, r.stderr)
	}
	// With it: found, no note.
	r = mustThiqa(t, nil, "audit", "find", "--data", dir, "--seq", "1", "--archive", out, "--json")
	var rec map[string]any
	if strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &rec) != nil || rec["seq"] != 1.0 || r.stderr != "" {
		t.Fatalf("audit find --seq 1 --archive: %q %q", r.stdout, r.stderr)
	}
	for _, k := range []string{"seq", "time", "actor", "action", "object", "outcome", "details", "prevHash", "hash"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("audit find --archive --json lacks %q: %s", k, r.stdout)
		}
	}
	// Oldest first over both, cut at the limit; newest first reaches the
	// archived records after the live ones.
	r = mustThiqa(t, nil, "audit", "find", "--data", dir, "--archive", out, "--oldest-first", "--limit", "2")
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "1 ") ||
		!strings.HasPrefix(lines[1], "2 ") || !strings.Contains(r.stderr, "more records match; the first 2 are printed") || strings.Contains(r.stderr, "note:") {
		t.Fatalf("audit find --archive --oldest-first --limit 2:\n%s%s", r.stdout, r.stderr)
	}
	r = mustThiqa(t, nil, "audit", "find", "--data", dir, "--archive", out, "--limit", "10000")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) < last+1 || !strings.HasPrefix(lines[len(lines)-1], "1 ") || !strings.HasPrefix(lines[len(lines)-last], m[1]+" ") || r.stderr != "" {
		t.Fatalf("audit find --archive, newest first: %d lines\n%s%s", len(lines), r.stdout, r.stderr)
	}
	reads := countAudit(t, db, "audit.read")

	// The same records in another gzip stream: not the file the database
	// records (its SHA-256 differs). A damaged file. No --data.
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&again, gzip.BestSpeed)
	zw.Write(plain)
	zw.Close()
	other := filepath.Join(t.TempDir(), "other.jsonl.gz")
	writeFile(t, other, again.String())
	damaged := filepath.Join(t.TempDir(), "damaged.jsonl.gz")
	writeFile(t, damaged, string(raw[:len(raw)-10]))
	for _, c := range []struct {
		args []string
		text string
	}{
		{[]string{"--data", dir, "--archive", other}, "not an archive file the database records: " + other + " (records 1 to " + m[1] + ", SHA-256 "},
		{[]string{"--data", dir, "--archive", out, "--archive", other}, "the archived range 1-" + m[1] + " records the file with SHA-256 "},
		{[]string{"--data", dir, "--archive", damaged}, "another file, or a damaged or truncated copy (thiqa audit verify --archive FILE says what is wrong with it)"},
		{[]string{"--data", dir, "--archive", filepath.Join(dir, "audit")}, "the archive file cannot be read: " + filepath.Join(dir, "audit") + ": "},
		{[]string{"--data", dir, "--archive", filepath.Join(t.TempDir(), "none.jsonl.gz")}, "no such file"},
		{[]string{"--archive", out}, "--archive needs --data"},
	} {
		r := thiqa(t, nil, append([]string{"audit", "find", "--seq", "1"}, c.args...)...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, c.text) {
			t.Errorf("audit find %v: exit %d, want 2 with %q\n%s%s", c.args, r.code, c.text, r.stdout, r.stderr)
		}
	}
	if n := countAudit(t, db, "audit.read"); n != reads {
		t.Fatalf("refused searches left %d audit.read records", n-reads)
	}
	// The searches with the file named it.
	r = mustThiqa(t, nil, "audit", "find", "--data", dir, "--action", "audit.read", "--limit", "1", "--json")
	if !strings.Contains(r.stdout, `\"archives\":[{\"file\":\"`+out+`\",\"firstSeq\":1,\"lastSeq\":`+m[1]+`,\"sha256\":\"`) {
		t.Fatalf("the last audit.read record: %s", r.stdout)
	}
}
