package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestCheckpointConfig: defaults on the named token, the interval of
// checkpointEvery (0 is off), and each bad value refused naming its key.
func TestCheckpointConfig(t *testing.T) {
	d := audit.CheckpointConfig{}.WithDefaults("other")
	if d.CheckpointKey != "pkcs11:token=other;object=audit-checkpoint" || d.CheckpointInterval() != time.Minute ||
		d.CheckpointFile != audit.DefaultCheckpointFile || d.CheckpointPublicKey != audit.DefaultCheckpointPublicKey {
		t.Fatalf("defaults: %+v", d)
	}
	if d != audit.DefaultCheckpointConfig("other") {
		t.Fatalf("WithDefaults of nothing differs from DefaultCheckpointConfig: %+v", d)
	}
	for every, want := range map[string]time.Duration{"": time.Minute, "0": 0, "0s": 0, "30s": 30 * time.Second, "2h": 2 * time.Hour} {
		c := audit.CheckpointConfig{CheckpointEvery: every}
		if err := c.Validate(); err != nil || c.CheckpointInterval() != want {
			t.Errorf("checkpointEvery %q: %s, %v, want %s", every, c.CheckpointInterval(), err, want)
		}
	}
	for _, tc := range []struct {
		c    audit.CheckpointConfig
		want string
	}{
		{audit.CheckpointConfig{CheckpointEvery: "soon"}, "audit.checkpointEvery"},
		{audit.CheckpointConfig{CheckpointEvery: "-1m"}, "audit.checkpointEvery"},
		{audit.CheckpointConfig{CheckpointEvery: "10ms"}, "audit.checkpointEvery"},
		{audit.CheckpointConfig{CheckpointEvery: "48h"}, "audit.checkpointEvery"},
		{audit.CheckpointConfig{CheckpointKey: "audit-checkpoint"}, "audit.checkpointKey"},
		{audit.CheckpointConfig{CheckpointFile: "  "}, "audit.checkpointFile"},
		{audit.CheckpointConfig{CheckpointPublicKey: "a\x00b"}, "audit.checkpointPublicKey"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
}
