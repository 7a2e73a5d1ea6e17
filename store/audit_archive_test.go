package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// After the oldest records were archived, what reads the audit log by
// object or actor (a certificate's trail, a citizen's activity, the
// statistics) sees the live records, and nothing breaks on a log that
// starts after seq 1; the delete trigger still refuses rows outside a
// range being archived.
func TestAuditReadsAfterArchive(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			appendN := func(n int) {
				for i := range n {
					if _, err := log.Append(ctx, audit.Entry{Actor: "citizen:11111111", Action: "certificate.issue", Object: "0aaa",
						Outcome: "success", Details: map[string]int{"i": i}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			appendN(30)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cps, pub := filepath.Join(dir, "cp.jsonl"), filepath.Join(dir, "cp.pem")
			if err := audit.PublishCheckpointKey(pub, key.Public()); err != nil {
				t.Fatal(err)
			}
			w, err := audit.NewCheckpointWriter(db, key, cps, audit.CheckpointWriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			appendN(10)
			if err := db.ExecTx(ctx, "DELETE FROM audit_log WHERE seq = 35"); err == nil {
				t.Fatal("the trigger let a live record be deleted")
			}
			res, err := audit.Archive(ctx, db, audit.ArchiveOptions{Through: 35, Out: filepath.Join(dir, "a.jsonl.gz"), CheckpointFile: cps, CheckpointKeyFile: pub})
			if err != nil || res.Row.LastSeq != 30 {
				t.Fatalf("Archive: %+v %v", res.Row, err)
			}
			trail, err := db.Trail(ctx, []string{"0aaa"}, 100)
			if err != nil || len(trail) != 10 || trail[0].Seq < 31 {
				t.Fatalf("trail after the archive: %d entries, %v", len(trail), err)
			}
			recs, err := db.Activity().ActivityRecords(ctx, activity.Query{Objects: []string{"0aaa"}, Actors: activity.CitizenActors("11111111"), Limit: 50})
			if err != nil || len(recs) != 10 || fmt.Sprint(recs[len(recs)-1].Seq) != "31" {
				t.Fatalf("activity after the archive: %d records, %v", len(recs), err)
			}
			a, err := audit.CountActivity(ctx, db, time.Unix(0, 0), time.Now().Add(time.Hour), audit.PeriodTotal)
			if err != nil {
				t.Fatal(err)
			}
			var issued int64
			for _, r := range a.Rows {
				if r.Action == "certificate.issue" {
					issued = r.Events
				}
			}
			if issued != 10 {
				t.Fatalf("statistics after the archive: %d issuances, want the 10 live ones", issued)
			}
		})
	}
}
