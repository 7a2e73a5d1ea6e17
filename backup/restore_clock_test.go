package backup_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// A restore on a machine whose clock is behind the newest checkpoint the
// lost deployment signed (the newer copy given with --checkpoints) takes
// the serial floor from that checkpoint, a second past it, and says so:
// the floor used to trust the clock alone, and numbers the lost
// deployment handed out after a restore of its own at a later time could
// have been handed out again. A later line signed by another key, and an
// incomplete last line, are not evidence and change nothing.
func TestRestoreFloorFromNewestCheckpoint(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			src := newSource(t, d)
			if _, err := src.log.Append(ctx, audit.Entry{Actor: "test", Action: "test.act", Object: "1", Outcome: audit.OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
			out := src.backUp(t)

			ahead := time.Now().Add(time.Hour).Truncate(time.Second)
			var cps bytes.Buffer
			for _, c := range []struct {
				key crypto.Signer
				at  time.Time
			}{{src.cpKey, ahead}, {newKey(t), ahead.Add(24 * time.Hour)}} {
				cp, err := audit.SignCheckpoint(c.key, audit.Head{Seq: 9, Hash: bytes.Repeat([]byte{7}, audit.HashSize)}, c.at)
				if err != nil {
					t.Fatal(err)
				}
				line, err := cp.MarshalLine()
				if err != nil {
					t.Fatal(err)
				}
				cps.Write(line)
			}
			cps.WriteString(`{"seq":10,"hash":"`) // a crash while writing
			cpFile := filepath.Join(t.TempDir(), "checkpoints.jsonl")
			if err := os.WriteFile(cpFile, cps.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}

			dst := filepath.Join(t.TempDir(), "restored")
			host := &testHost{data: dst, cfg: d.NewConfig(t), cp: src.cpKey, keys: map[string]crypto.Signer{"root": src.rootKey}}
			r, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, Checkpoints: cpFile, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			var rep bytes.Buffer
			r.Report(&rep)
			floor := backup.SerialFloor(ahead.Add(time.Second))
			for _, want := range []string{
				fmt.Sprintf(`crl_numbers "root" raised from 0 to %d`, floor),
				"is before the newest checkpoint the deployment signed (" + ahead.UTC().Format(time.RFC3339) + "): the serial floor was taken from the checkpoint",
			} {
				if !strings.Contains(rep.String(), want) {
					t.Errorf("the report lacks %q:\n%s", want, rep.String())
				}
			}
		})
	}
}
