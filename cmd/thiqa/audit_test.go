package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAuditCheckpointsEndToEnd: serve writes signed checkpoints (every
// tick and at shutdown) to a file outside the database; deleting the last
// records and moving audit_head back passes the chain check but not the
// checkpoint check.
func TestAuditCheckpointsEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, cfgPath)
	if !strings.Contains(y, "checkpointEvery: 1m0s") {
		t.Fatalf("thiqa.yaml has no audit.checkpointEvery:\n%s", y)
	}
	writeFile(t, cfgPath, strings.Replace(y, "checkpointEvery: 1m0s", "checkpointEvery: 1s", 1))
	cpFile := filepath.Join(dir, "audit", "checkpoints.jsonl")
	if pem := mustRead(t, filepath.Join(dir, "audit", "checkpoint-key.pem")); !strings.Contains(pem, "BEGIN PUBLIC KEY") {
		t.Fatalf("checkpoint public key: %q", pem)
	}
	// init anchored what it recorded.
	if n := strings.Count(mustRead(t, cpFile), "\n"); n != 1 {
		t.Fatalf("after init: %d checkpoint lines, want 1", n)
	}
	// A second init keeps the key (and its PEM) and writes no new key record.
	keys := countAudit(t, filepath.Join(dir, "thiqa.db"), "key.generate")
	mustThiqa(t, nil, "init", "--data", dir)
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "key.generate"); n != keys {
		t.Fatalf("second init generated keys: %d key.generate records, was %d", n, keys)
	}

	srv := startServer(t, dir, nil)
	doc := filepath.Join(t.TempDir(), "doc.txt")
	writeFile(t, doc, "checkpointed")
	for i := range 3 {
		mustThiqa(t, nil, "timestamp", "--url", srv.base+"/tsa", "--in", doc, "--out", filepath.Join(t.TempDir(), strconv.Itoa(i)+".tsr"))
	}
	before := strings.Count(mustRead(t, cpFile), "\n")
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(mustRead(t, cpFile), "\n") <= before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Count(mustRead(t, cpFile), "\n") <= before {
		t.Fatalf("no periodic checkpoint within 20 s:\n%s", srv.stderr.String())
	}
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "audit checkpoint written at shutdown") {
		t.Fatalf("no checkpoint at shutdown:\n%s", srv.stderr.String())
	}
	if st, err := os.Stat(cpFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint file: %v %v", st, err)
	}

	ok := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	head := regexp.MustCompile(`audit chain OK: \d+ records, head seq (\d+), hash [0-9a-f]{64}\n`).FindStringSubmatch(ok.stdout)
	if head == nil {
		t.Fatalf("audit verify: %s", ok.stdout)
	}
	// The shutdown checkpoint names the head: the service.stop record.
	if want := "audit checkpoints OK: "; !strings.Contains(ok.stdout, want) || !strings.Contains(ok.stdout, "the last at seq "+head[1]+" ") {
		t.Fatalf("audit verify, want the last checkpoint at the head (seq %s): %s", head[1], ok.stdout)
	}
	headSeq, _ := strconv.Atoi(head[1])

	// Without the checkpoint file, verify says the chain is not anchored.
	none := mustThiqa(t, nil, "audit", "verify", "--data", dir, "--checkpoints", filepath.Join(t.TempDir(), "absent.jsonl"))
	if !strings.Contains(none.stdout, "audit chain OK") || !strings.Contains(none.stdout, "audit checkpoints: none") {
		t.Fatalf("audit verify without checkpoints: %s", none.stdout)
	}

	// A crash in the middle of a checkpoint write is tolerated with a warning.
	f, err := os.OpenFile(cpFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"seq":`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	warned := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	if !strings.Contains(warned.stdout, "WARNING: line") || !strings.Contains(warned.stdout, "incomplete") {
		t.Fatalf("audit verify with an incomplete last line: %s", warned.stdout)
	}

	// The attack: delete the last two records and move audit_head back to
	// the new end, recomputing nothing else. The chain alone stays valid.
	newHead := headSeq - 2
	db := filepath.Join(dir, "thiqa.db")
	tamperSQLite(t, db, "DELETE FROM audit_log WHERE seq > "+strconv.Itoa(newHead))
	tamperSQLite(t, db, "UPDATE audit_head SET seq = "+strconv.Itoa(newHead)+", hash = (SELECT hash FROM audit_log WHERE seq = "+strconv.Itoa(newHead)+") WHERE id = 1")
	chainOnly := mustThiqa(t, nil, "audit", "verify", "--data", dir, "--checkpoints", filepath.Join(t.TempDir(), "absent.jsonl"))
	if !strings.Contains(chainOnly.stdout, "audit chain OK") {
		t.Fatalf("the chain alone should not notice: %s", chainOnly.stdout)
	}
	broken := thiqa(t, nil, "audit", "verify", "--data", dir)
	// The first checkpoint past the new end is named.
	want := regexp.MustCompile(`^audit chain BROKEN: checkpoint \d+ \(seq (\d+)\): the chain ends at seq ` + strconv.Itoa(newHead) + ` — records were removed`)
	m := want.FindStringSubmatch(broken.stdout)
	if broken.code != 1 || m == nil || strings.Count(broken.stdout, "\n") != 1 {
		t.Fatalf("audit verify after removing the tail: exit %d\n%s%s", broken.code, broken.stdout, broken.stderr)
	}
	if seq, _ := strconv.Atoi(m[1]); seq <= newHead || seq > headSeq {
		t.Fatalf("audit verify after removing the tail: exit %d\n%s%s", broken.code, broken.stdout, broken.stderr)
	}

	// A forged line (signed by another key) is named too.
	other := filepath.Join(t.TempDir(), "other")
	mustThiqa(t, nil, "init", "--data", other)
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	writeFile(t, forged, mustRead(t, filepath.Join(other, "audit", "checkpoints.jsonl")))
	bad := thiqa(t, nil, "audit", "verify", "--data", dir, "--checkpoints", forged)
	if bad.code != 1 || !strings.Contains(bad.stdout, "audit chain BROKEN: checkpoint 1 (seq ") || !strings.Contains(bad.stdout, "signature does not verify") {
		t.Fatalf("audit verify with a forged checkpoint: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
}

// TestAuditCheckpointBadInput: serve refuses to start without the
// checkpoint key (one clear line), unless checkpoints are off.
func TestAuditCheckpointBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, cfgPath)

	writeFile(t, cfgPath, strings.Replace(y, "object=audit-checkpoint", "object=no-such-key", 1))
	r := thiqa(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "no-such-key") || !strings.Contains(line, "thiqa init") {
		t.Fatalf("serve without the checkpoint key: exit %d, %q", r.code, line)
	}

	// With checkpoints off, the key is not needed.
	off := strings.Replace(strings.Replace(y, "object=audit-checkpoint", "object=no-such-key", 1), "checkpointEvery: 1m0s", "checkpointEvery: 0", 1)
	writeFile(t, cfgPath, off)
	srv := startServer(t, dir, nil)
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "audit checkpoints are off") {
		t.Fatalf("serve with checkpoints off:\n%s", srv.stderr.String())
	}

	writeFile(t, cfgPath, strings.Replace(y, "checkpointEvery: 1m0s", "checkpointEvery: often", 1))
	r = thiqa(t, nil, "audit", "verify", "--data", dir)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "audit.checkpointEvery") {
		t.Fatalf("bad checkpointEvery: exit %d, %q", r.code, line)
	}
	writeFile(t, cfgPath, y)

	// A public key that is not the token's: init refuses to overwrite it,
	// and verify fails every checkpoint.
	pemPath := filepath.Join(dir, "audit", "checkpoint-key.pem")
	other := filepath.Join(t.TempDir(), "other")
	mustThiqa(t, nil, "init", "--data", other)
	writeFile(t, pemPath, mustRead(t, filepath.Join(other, "audit", "checkpoint-key.pem")))
	r = thiqa(t, nil, "init", "--data", dir)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "another public key") {
		t.Fatalf("init with a foreign checkpoint public key: exit %d, %q", r.code, line)
	}
	v := thiqa(t, nil, "audit", "verify", "--data", dir)
	if v.code != 1 || !strings.Contains(v.stdout, "signature does not verify") {
		t.Fatalf("verify with a foreign public key: exit %d %s%s", v.code, v.stdout, v.stderr)
	}
	writeFile(t, pemPath, "not a key")
	v = thiqa(t, nil, "audit", "verify", "--data", dir)
	if line := errorLine(t, v); v.code == 0 || !strings.Contains(line, "checkpoint public key") {
		t.Fatalf("verify with a broken public key: exit %d, %q", v.code, line)
	}
}

// TestAuditVerifySince: `thiqa audit verify --since SEQ` verifies from the
// newest signed checkpoint at or before SEQ and says so; it refuses when
// no checkpoint precedes SEQ, and the default output stays the full walk's.
func TestAuditVerifySince(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cpFile := filepath.Join(dir, "audit", "checkpoints.jsonl")
	m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, cpFile))
	if m == nil {
		t.Fatalf("no checkpoint after init: %s", mustRead(t, cpFile))
	}
	seq, _ := strconv.Atoi(m[1])

	full := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	if strings.Contains(full.stdout, "INCREMENTAL") || !strings.HasPrefix(full.stdout, "audit chain OK: "+m[1]+" records, head seq "+m[1]+", hash ") {
		t.Fatalf("audit verify (full): %s", full.stdout)
	}
	inc := mustThiqa(t, nil, "audit", "verify", "--data", dir, "--since", strconv.Itoa(seq+100))
	for _, want := range []string{
		"audit verify: INCREMENTAL from seq " + m[1] + ", anchored by the checkpoint on line 1 of " + cpFile + " (seq " + m[1] + ", ",
		"records 1 to " + strconv.Itoa(seq-1) + " were NOT re-checked in this run",
		"audit chain OK from seq " + m[1] + ": 1 records, head seq " + m[1] + ", hash ",
		"audit checkpoints OK from line 1: 1 verified, the last at seq " + m[1] + " ",
	} {
		if !strings.Contains(inc.stdout, want) {
			t.Fatalf("audit verify --since, want %q in:\n%s", want, inc.stdout)
		}
	}

	r := thiqa(t, nil, "audit", "verify", "--data", dir, "--since", strconv.Itoa(seq-1))
	if line := errorLine(t, r); r.code != 1 || r.stdout != "" || !strings.Contains(line, "no signed checkpoint") ||
		!strings.Contains(line, "the earliest is at seq "+m[1]) {
		t.Fatalf("audit verify --since before the first checkpoint: exit %d, %q, stdout %q", r.code, line, r.stdout)
	}
	for _, args := range [][]string{{"--data", dir, "--since", "0"}, {"--ceremony", dir, "--since", "5"}, {"--data", dir, "--since", "x"}} {
		if r := thiqa(t, nil, append([]string{"audit", "verify"}, args...)...); r.code != 2 {
			t.Fatalf("audit verify %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}

	// The anchor record edited: broken (exit 1), as the full walk says.
	tamperSQLite(t, filepath.Join(dir, "thiqa.db"), "UPDATE audit_log SET actor = 'mallory' WHERE seq = "+m[1])
	r = thiqa(t, nil, "audit", "verify", "--data", dir, "--since", m[1])
	if r.code != 1 || !strings.Contains(r.stdout, "audit chain BROKEN: audit chain broken at seq "+m[1]+" (hash-mismatch)") {
		t.Fatalf("audit verify --since after an edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestAuditReport: `thiqa audit report` counts what init recorded, as a
// table and as JSON, and refuses bad ranges and periods with exit 2.
// Without --from it says it counts from the first record and when that
// was (it said "from 1970-01-01T00:00:00Z").
func TestAuditReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	before := time.Now().UTC().Truncate(time.Second)
	mustThiqa(t, nil, "init", "--data", dir)
	month := time.Now().UTC().Format("2006-01")
	r := mustThiqa(t, nil, "audit", "report", "--data", dir)
	m := regexp.MustCompile(`^audit activity from the first record \((\S+)\) to `).FindStringSubmatch(r.stdout)
	if m == nil || !regexp.MustCompile(`(?m)^`+month+`\s+data\.init\s+1\s+0\s+0\s+1\s+1$`).MatchString(r.stdout) {
		t.Fatalf("audit report:\n%s", r.stdout)
	}
	if first, err := time.Parse(time.RFC3339, m[1]); err != nil || first.Before(before) || first.After(time.Now()) {
		t.Fatalf("audit report: the first record at %q, want a time of the init run (from %s): %v", m[1], before.Format(time.RFC3339), err)
	}
	// With --from the bound given is printed as before.
	if r := mustThiqa(t, nil, "audit", "report", "--data", dir, "--from", "2000-01"); !strings.HasPrefix(r.stdout, "audit activity from 2000-01-01T00:00:00Z to ") {
		t.Fatalf("audit report --from 2000-01:\n%s", r.stdout)
	}
	r = mustThiqa(t, nil, "audit", "report", "--data", dir, "--by", "total", "--json", "--to", "2100-01")
	var a struct {
		From, To, By string
		Rows         []struct {
			Period, Action string
			Outcomes       map[string]int64
			Events         int64
			Records        int64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatalf("audit report --json: %v\n%s", err, r.stdout)
	}
	var generated int64
	for _, row := range a.Rows {
		if row.Period != "total" {
			t.Errorf("period %q, want total", row.Period)
		}
		if row.Action == "key.generate" {
			generated = row.Outcomes["success"]
		}
	}
	if a.To != "2100-01-01T00:00:00Z" || a.By != "total" || generated == 0 {
		t.Fatalf("audit report --json: %s", r.stdout)
	}
	if r := mustThiqa(t, nil, "audit", "report", "--data", dir, "--from", "2000-01", "--to", "2000-02"); !strings.Contains(r.stdout, "no records in this range") {
		t.Fatalf("audit report of an empty range:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"--from", "2026-13"}, {"--to", "yesterday"}, {"--from", "2026-12", "--to", "2026-11"}, {"--by", "week"}} {
		if r := thiqa(t, nil, append([]string{"audit", "report", "--data", dir}, args...)...); r.code != 2 || r.stdout != "" {
			t.Fatalf("audit report %v: exit %d, want 2\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
