package backup_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
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
			cpFile := filepath.Join(t.TempDir(), "checkpoints.jsonl")
			writeLostCheckpoints(t, cpFile, src.cpKey, ahead)

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
			checkRestoreRecord(t, host.cfg, floor, ahead)
		})
	}
}

// writeLostCheckpoints writes to path the checkpoint file of a lost
// deployment whose clock reached at: its newest checkpoint, signed with
// key, then a later one of another key and an incomplete last line, which
// are not evidence.
func writeLostCheckpoints(t *testing.T, path string, key crypto.Signer, at time.Time) {
	t.Helper()
	var cps bytes.Buffer
	for _, c := range []struct {
		key crypto.Signer
		at  time.Time
	}{{key, at}, {newKey(t), at.Add(24 * time.Hour)}} {
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
	if err := os.WriteFile(path, cps.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint file outside the data folder is not in the backup and not
// restored, but when this host has it at its place (the same machine,
// shared storage) the restore reads it, without --checkpoints, as the
// evidence of how far the lost deployment's clock got: the floor is taken
// past its newest checkpoint. It used to be read only when given with
// --checkpoints, and the floor came from a clock behind it. The file is
// left as it was.
func TestRestoreFloorFromCheckpointFileOutsideData(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			src := newSource(t, d)
			out := src.backUp(t)

			ahead := time.Now().Add(time.Hour).Truncate(time.Second)
			cpFile := filepath.Join(t.TempDir(), "log", "checkpoints.jsonl")
			if err := os.MkdirAll(filepath.Dir(cpFile), 0o700); err != nil {
				t.Fatal(err)
			}
			writeLostCheckpoints(t, cpFile, src.cpKey, ahead)
			before, err := os.ReadFile(cpFile)
			if err != nil {
				t.Fatal(err)
			}

			dst := filepath.Join(t.TempDir(), "restored")
			host := &testHost{data: dst, cfg: d.NewConfig(t), cp: src.cpKey, keys: map[string]crypto.Signer{"root": src.rootKey}, cpFile: cpFile}
			r, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			var rep bytes.Buffer
			r.Report(&rep)
			floor := backup.SerialFloor(ahead.Add(time.Second))
			for _, want := range []string{
				fmt.Sprintf(`crl_numbers "root" raised from 0 to %d`, floor),
				"is before the newest checkpoint the deployment signed (" + ahead.UTC().Format(time.RFC3339) + ")",
				"audit.checkpointFile " + cpFile + " is outside the data folder and was not restored",
			} {
				if !strings.Contains(rep.String(), want) {
					t.Errorf("the report lacks %q:\n%s", want, rep.String())
				}
			}
			if after, err := os.ReadFile(cpFile); err != nil || !bytes.Equal(after, before) {
				t.Errorf("the checkpoint file outside the data folder changed (%v)", err)
			}
			checkRestoreRecord(t, host.cfg, floor, ahead)
		})
	}
}

// checkRestoreRecord wants the restored store's data.restore record to give
// the floor the report shows and the checkpoint it was taken from, which
// explains a floor past the record's own time (it gave the floor alone).
func checkRestoreRecord(t *testing.T, cfg store.Config, floor int64, checkpoint time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var details map[string]any
	if err := db.AuditRecords(ctx, 1, func(r audit.Record) error {
		if r.Action == "data.restore" {
			dec := json.NewDecoder(bytes.NewReader(r.Details))
			dec.UseNumber()
			return dec.Decode(&details)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := details["serialFloor"].(json.Number); got.String() != fmt.Sprint(floor) {
		t.Errorf("the data.restore record gives serialFloor %v, the counters went to %d", details["serialFloor"], floor)
	}
	if got, want := details["serialFloorCheckpoint"], checkpoint.UTC().Format(time.RFC3339Nano); got != want {
		t.Errorf("the data.restore record gives serialFloorCheckpoint %v, want %s", got, want)
	}
}
