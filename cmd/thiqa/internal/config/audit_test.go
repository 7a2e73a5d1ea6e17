package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditSection(t *testing.T) {
	dir := t.TempDir()
	good, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(good), "checkpointEvery: 1m0s") {
		t.Fatalf("default configuration lacks audit.checkpointEvery:\n%s", good)
	}
	c, err := Parse(good, dir)
	if err != nil {
		t.Fatal(err)
	}
	a := c.ResolvedAudit()
	if a.CheckpointInterval() != time.Minute || a.CheckpointKey != "pkcs11:token=thiqa;object=audit-checkpoint" ||
		a.CheckpointFile != dir+"/audit/checkpoints.jsonl" || a.CheckpointPublicKey != dir+"/audit/checkpoint-key.pem" {
		t.Fatalf("resolved audit section: %+v", a)
	}

	// A configuration written before the section existed gets the defaults,
	// on its own token.
	i := strings.Index(string(good), "audit:\n")
	old := strings.Replace(string(good[:i]), "tokenLabel: thiqa", "tokenLabel: other", 1)
	old = strings.ReplaceAll(old, "pkcs11:token=thiqa;", "pkcs11:token=other;") // the keys are on that token
	c, err = Parse([]byte(old), dir)
	if err != nil {
		t.Fatalf("configuration without an audit section: %v", err)
	}
	if a := c.ResolvedAudit(); a.CheckpointInterval() != time.Minute || a.CheckpointKey != "pkcs11:token=other;object=audit-checkpoint" {
		t.Fatalf("defaults for an old configuration: %+v", a)
	}

	for _, tc := range []struct {
		every string
		want  time.Duration
	}{{"0", 0}, {`"0"`, 0}, {"0s", 0}, {"30s", 30 * time.Second}, {"2h", 2 * time.Hour}} {
		c, err := Parse([]byte(strings.Replace(string(good), "checkpointEvery: 1m0s", "checkpointEvery: "+tc.every, 1)), dir)
		if err != nil {
			t.Fatalf("checkpointEvery %s: %v", tc.every, err)
		}
		if got := c.ResolvedAudit().CheckpointInterval(); got != tc.want {
			t.Fatalf("checkpointEvery %s = %s, want %s", tc.every, got, tc.want)
		}
	}
	for _, tc := range []struct{ from, to, want string }{
		{"checkpointEvery: 1m0s", "checkpointEvery: soon", "audit.checkpointEvery"},
		{"checkpointEvery: 1m0s", "checkpointEvery: -1m", "audit.checkpointEvery"},
		{"checkpointEvery: 1m0s", "checkpointEvery: 10ms", "audit.checkpointEvery"},
		{"checkpointEvery: 1m0s", "checkpointEvery: 48h", "audit.checkpointEvery"},
		{"checkpointKey: pkcs11:token=thiqa;object=audit-checkpoint", "checkpointKey: audit-checkpoint", "audit.checkpointKey"},
		{"checkpointFile: audit/checkpoints.jsonl", "checkpointFile: \"  \"", "audit.checkpointFile"},
		{"checkpointFile: audit/checkpoints.jsonl", "checkpointFlie: x", "field checkpointFlie not found"},
	} {
		if !strings.Contains(string(good), tc.from) {
			t.Fatalf("default configuration has no %q", tc.from)
		}
		_, err := Parse([]byte(strings.Replace(string(good), tc.from, tc.to, 1)), dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: got %v, want an error naming %s", tc.to, err, tc.want)
		}
	}
}
