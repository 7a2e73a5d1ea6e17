package audit_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// execAsAttacker runs stmts on the database with its triggers in place
// (what anyone with write access to it can do without dropping them).
func execAsAttacker(t *testing.T, cfg store.Config, stmts ...string) {
	t.Helper()
	driver := "sqlite"
	if cfg.Driver == store.DriverPostgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// forgeRange records an archived range 1..last (state deleting, as the
// trigger of audit_log wants) with the live hash of record last and
// deletes its records: the oldest records vanish without any file.
func forgeRange(t *testing.T, s *sinceLog, d storetest.Dialect, last int64, extra string) {
	t.Helper()
	cols, vals := "", ""
	if extra != "" {
		cols, vals = ", checkpoint_line", ", '"+strings.ReplaceAll(extra, "'", "''")+"'"
	}
	execAsAttacker(t, s.cfg,
		fmt.Sprintf(`INSERT INTO audit_archives (first_seq, last_seq, last_hash, file_name, file_sha256, created_unix_ns, state%s)
VALUES (1, %d, %s, 'forged.jsonl.gz', %s, 1, 'deleting'%s)`, cols, last, blobLiteral(d.Name, s.recs[last-1].Hash),
			blobLiteral(d.Name, bytes.Repeat([]byte{1}, 32)), vals),
		fmt.Sprintf("DELETE FROM audit_log WHERE seq <= %d", last),
		"UPDATE audit_archives SET state = 'done' WHERE first_seq = 1")
}

// TestArchiveForgedRangeDetected: an archived range that no signed
// checkpoint vouches for is a break. The end of a range was only held
// against the checkpoint file, and a range ending where the file names no
// checkpoint was a warning: anyone with write access to the database
// (no checkpoint key) made any prefix of the log vanish by recording a
// range for it and deleting its rows, which the trigger lets through.
func TestArchiveForgedRangeDetected(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("NoCheckpoint", func(t *testing.T) {
				s := newSinceLog(t, d)
				forgeRange(t, s, d, 30, "")
				s.wantFull(t, false, "audit chain BROKEN: the archived range 1-30 (forged.jsonl.gz) keeps no signed checkpoint")
				// Nor with a rotated checkpoint file (its first checkpoint
				// after the range).
				rotated := writeLines(t, t.TempDir(), "cps.jsonl", strings.SplitAfter(mustReadFile(t, s.cps), "\n")[2])
				var out bytes.Buffer
				if ok, err := audit.VerifyAll(ctxT(t), s.db, rotated, s.pub, &out); err != nil || ok {
					t.Fatalf("VerifyAll with a rotated file: %v %v\n%s", ok, err, out.String())
				}
			})
			t.Run("AnotherSeqsCheckpoint", func(t *testing.T) {
				s := newSinceLog(t, d)
				cp := strings.TrimSuffix(strings.SplitAfter(mustReadFile(t, s.cps), "\n")[1], "\n") // seq 40
				forgeRange(t, s, d, 30, cp)
				s.wantFull(t, false, "the archived range 1-30 (forged.jsonl.gz): its checkpoint names record 40 with another hash than the range's last")
			})
			t.Run("EditedCheckpoint", func(t *testing.T) {
				s := newSinceLog(t, d)
				cp := strings.TrimSuffix(strings.SplitAfter(mustReadFile(t, s.cps), "\n")[1], "\n")
				c, err := audit.ParseCheckpointLine([]byte(cp))
				if err != nil {
					t.Fatal(err)
				}
				c.Seq, c.Hash = 30, s.recs[29].Hash
				forged, err := c.MarshalLine()
				if err != nil {
					t.Fatal(err)
				}
				forgeRange(t, s, d, 30, strings.TrimSuffix(string(forged), "\n"))
				s.wantFull(t, false, "the archived range 1-30 (forged.jsonl.gz): its checkpoint's signature does not verify")
			})
			t.Run("RealArchiveWithRotatedFile", func(t *testing.T) {
				s := newSinceLog(t, d)
				// Killed mid-delete: the row is deleting, the one state
				// whose update (to done) the triggers let through, and
				// nothing else may change with it.
				_, err := s.archive(t, 45, "a.jsonl.gz", func(o *audit.ArchiveOptions) {
					o.BatchSize = 10
					*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
				})
				if !errors.Is(err, errCrash) {
					t.Fatalf("Archive killed mid-delete: %v", err)
				}
				if err := execErr(s.cfg, "UPDATE audit_archives SET checkpoint_line = '', state = 'done' WHERE first_seq = 1"); err == nil {
					t.Fatal("the checkpoint a range keeps was dropped as it finished")
				}
				s.mustArchive(t, 45, "a.jsonl.gz")
				rotated := writeLines(t, t.TempDir(), "cps.jsonl", strings.SplitAfter(mustReadFile(t, s.cps), "\n")[2])
				var out bytes.Buffer
				if ok, err := audit.VerifyAll(ctxT(t), s.db, rotated, s.pub, &out); err != nil || !ok ||
					!strings.Contains(out.String(), "the signed checkpoint each keeps vouches for it") {
					t.Fatalf("VerifyAll of a real archive with a rotated file: %v %v\n%s", ok, err, out.String())
				}
				if err := execErr(s.cfg, "UPDATE audit_archives SET checkpoint_line = '' WHERE first_seq = 1"); err == nil {
					t.Fatal("the checkpoint a finished range keeps was changed")
				}
			})
		})
	}
}

// execErr runs q with the triggers in place and returns its error.
func execErr(cfg store.Config, q string) error {
	driver := "sqlite"
	if cfg.Driver == store.DriverPostgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, cfg.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(q)
	return err
}

// TestArchiveForgedRangeCheckpointChecks: the checkpoint checks a restore
// runs (VerifyCheckpointsByLookup, VerifyCheckpoints) hold the archived
// ranges' ends to a signature as VerifyAll does. They only held the
// checkpoints of the file against the ranges' hashes: a database whose
// oldest records were made to vanish by a forged range row restored with
// its checkpoints found sound.
func TestArchiveForgedRangeCheckpointChecks(t *testing.T) {
	check := func(t *testing.T, s *sinceLog) []audit.CheckpointReport {
		t.Helper()
		pub, err := audit.ReadCheckpointKey(s.pub)
		if err != nil {
			t.Fatal(err)
		}
		raw := []byte(mustReadFile(t, s.cps))
		byLookup, err := audit.VerifyCheckpointsByLookup(ctxT(t), s.db, bytes.NewReader(raw), pub)
		if err != nil {
			t.Fatal(err)
		}
		walk, err := audit.VerifyCheckpoints(ctxT(t), s.db, bytes.NewReader(raw), pub)
		if err != nil {
			t.Fatal(err)
		}
		return []audit.CheckpointReport{byLookup, walk}
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for name, line := range map[string]func(s *sinceLog) string{
				"NoCheckpoint": func(*sinceLog) string { return "" },
				"AnotherSeqsCheckpoint": func(s *sinceLog) string {
					return strings.TrimSuffix(strings.SplitAfter(mustReadFile(t, s.cps), "\n")[1], "\n")
				},
			} {
				t.Run(name, func(t *testing.T) {
					s := newSinceLog(t, d)
					forgeRange(t, s, d, 30, line(s))
					for i, rep := range check(t, s) {
						if rep.OK() || rep.Problem.Kind != audit.CheckpointArchiveUnvouched ||
							!strings.Contains(rep.String(), "the archived range 1-30 (forged.jsonl.gz)") {
							t.Fatalf("check %d of the checkpoints of a forged range: %s %+v", i, rep, rep.Problem)
						}
					}
				})
			}
			t.Run("RealArchive", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.mustArchive(t, 45, "a.jsonl.gz")
				for i, rep := range check(t, s) {
					if !rep.OK() || rep.ArchiveEnds != 1 {
						t.Fatalf("check %d of the checkpoints of a real archive: %s %+v", i, rep, rep)
					}
				}
			})
		})
	}
}
