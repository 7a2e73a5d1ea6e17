package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditFindCommand: after an issuance, `thiqa audit find --object
// SERIAL` prints its certificate.issue record (text and JSON Lines, with
// an archive file's field names) and leaves its own audit.read record;
// nothing matching exits 1, a bad flag 2.
func TestAuditFindCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustThiqa(t, nil, "init", "--data", dir)
	csrFile, subjFile := filepath.Join(t.TempDir(), "req.csr"), filepath.Join(t.TempDir(), "subject.json")
	writeFile(t, csrFile, newTestCSR(t))
	raw, _ := json.Marshal(orgSubject())
	writeFile(t, subjFile, string(raw))
	issued := mustThiqa(t, nil, "issue", "--data", dir, "--profile", "organisation-seal", "--csr", csrFile, "--subject-file", subjFile)
	blk, _ := pem.Decode([]byte(issued.stdout))
	if blk == nil {
		t.Fatalf("issue printed no certificate: %s", issued.stdout)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	serial := fmt.Sprintf("%x", cert.SerialNumber)

	// The newest certificate.issue record, as JSON: its object is the serial.
	js := mustThiqa(t, nil, "audit", "find", "--data", dir, "--action", "certificate.issue", "--limit", "1", "--json")
	var rec map[string]any
	if strings.Count(js.stdout, "\n") != 1 || json.Unmarshal([]byte(js.stdout), &rec) != nil {
		t.Fatalf("audit find --json: %q", js.stdout)
	}
	for _, k := range []string{"seq", "time", "actor", "action", "object", "outcome", "details", "prevHash", "hash"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("audit find --json lacks %q: %s", k, js.stdout)
		}
	}
	object, _ := rec["object"].(string)
	if !strings.EqualFold(strings.TrimLeft(object, "0"), strings.TrimLeft(serial, "0")) || rec["action"] != "certificate.issue" {
		t.Fatalf("the newest certificate.issue record is %s, want object %s", js.stdout, serial)
	}

	// By object, in text: that record, one line.
	found := mustThiqa(t, nil, "audit", "find", "--data", dir, "--object", object)
	lines := strings.Split(strings.TrimSuffix(found.stdout, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], fmt.Sprint(rec["seq"])+" ") || !strings.Contains(lines[0], " certificate.issue "+object+" success {") {
		t.Fatalf("audit find --object %s:\n%s%s", object, found.stdout, found.stderr)
	}

	// Each search left its own record, by the operator, naming what it
	// looked for and how many records it returned.
	reads := mustThiqa(t, nil, "audit", "find", "--data", dir, "--action", "audit.read", "--oldest-first", "--json")
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(reads.stdout, "\n"), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("audit.read records: %v\n%s", err, reads.stdout)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[1]["object"] != object || !strings.HasPrefix(got[0]["actor"].(string), "cli:") ||
		!strings.Contains(got[1]["details"].(string), `"returned":1`) || !strings.Contains(got[0]["details"].(string), `"actions":["certificate.issue"]`) {
		t.Fatalf("the searches left %d audit.read records:\n%s", len(got), reads.stdout)
	}

	// Nothing matches: exit 1, nothing printed; still recorded.
	none := thiqa(t, nil, "audit", "find", "--data", dir, "--object", "no-such-object")
	if none.code != 1 || none.stdout != "" {
		t.Fatalf("audit find with no match: exit %d\n%s%s", none.code, none.stdout, none.stderr)
	}
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "audit.read"); n != 4 {
		t.Fatalf("%d audit.read records, want 4", n)
	}

	// Bad flags: exit 2, nothing read, nothing recorded.
	for _, args := range [][]string{
		{"--since", "yesterday"},
		{"--limit", "10001"},
		{"--seq", "0"},
		{"--since", "2026-12", "--until", "2026-11"},
		{"--no-such-flag"},
	} {
		r := thiqa(t, nil, append([]string{"audit", "find", "--data", dir}, args...)...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("audit find %v: exit %d, want 2\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "audit.read"); n != 4 {
		t.Fatalf("%d audit.read records after bad flags, want 4", n)
	}
	if u := thiqa(t, nil, "audit"); !strings.Contains(u.stderr, "thiqa audit find --data DIR") {
		t.Fatalf("thiqa audit usage lacks find:\n%s", u.stderr)
	}
}
