package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store/storetest"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeChain is a HeadReader/ChainReader over records held in memory.
type fakeChain struct {
	mu   sync.Mutex
	recs []audit.Record
	head audit.Head
}

func (f *fakeChain) AuditHead(context.Context) (audit.Head, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head, nil
}

func (f *fakeChain) AuditRecords(_ context.Context, from int64, fn func(audit.Record) error) error {
	f.mu.Lock()
	recs := append([]audit.Record(nil), f.recs...)
	f.mu.Unlock()
	for _, r := range recs {
		if r.Seq < from {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// rewriteFrom rewrites the records from seq on (another actor, hashes
// recomputed), as someone with write access to the database could.
func (f *fakeChain) rewriteFrom(seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.recs[seq-2].Hash
	for i := seq - 1; i < int64(len(f.recs)); i++ {
		r := f.recs[i]
		r.Actor, r.PrevHash = "mallory", prev
		r.Hash = audit.HashRecord(r)
		f.recs[i], prev = r, r.Hash
	}
	f.head = audit.Head{Seq: f.head.Seq, Hash: prev}
}

// grow appends n records to the fake chain.
func (f *fakeChain) grow(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		r := audit.Record{Seq: f.head.Seq + 1, Time: time.Unix(1700000000, 0).UTC(), Actor: "a", Action: "b", Outcome: "success",
			Details: []byte("{}"), PrevHash: audit.GenesisHash()}
		if f.head.Seq > 0 {
			r.PrevHash = f.head.Hash
		}
		r.Hash = audit.HashRecord(r)
		f.recs = append(f.recs, r)
		f.head = audit.Head{Seq: r.Seq, Hash: r.Hash}
	}
}

func checkpointFile(t *testing.T) string {
	return filepath.Join(t.TempDir(), "audit", "checkpoints.jsonl")
}

func newWriter(t *testing.T, heads audit.ChainReader, key *ecdsa.PrivateKey, path string, now func() time.Time) *audit.CheckpointWriter {
	t.Helper()
	w, err := audit.NewCheckpointWriter(heads, key, path, audit.CheckpointWriterOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustCheckpoint(t *testing.T, w *audit.CheckpointWriter, wantWritten bool) audit.Checkpoint {
	t.Helper()
	c, written, err := w.Checkpoint(context.Background())
	if err != nil || written != wantWritten {
		t.Fatalf("Checkpoint: written %v, %v; want written %v", written, err, wantWritten)
	}
	return c
}

func verifyFile(t *testing.T, st audit.ChainReader, path string, pub any) audit.CheckpointReport {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := audit.VerifyCheckpoints(context.Background(), st, f, pub)
	if err != nil {
		t.Fatalf("VerifyCheckpoints: %v", err)
	}
	return rep
}

func wantProblem(t *testing.T, rep audit.CheckpointReport, line int, kind audit.CheckpointProblemKind, text string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("VerifyCheckpoints: %s; want %s at checkpoint %d", rep, kind, line)
	}
	if rep.Problem.Line != line || rep.Problem.Kind != kind || !strings.Contains(rep.String(), text) {
		t.Fatalf("VerifyCheckpoints: %s (%s); want %s at checkpoint %d, saying %q", rep, rep.Problem.Kind, kind, line, text)
	}
}

// clock returns a clock that moves one second per call.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func TestCheckpointSignAndParse(t *testing.T) {
	key := newKey(t)
	head := audit.Head{Seq: 41230, Hash: bytes.Repeat([]byte{0xab}, audit.HashSize)}
	c, err := audit.SignCheckpoint(key, head, time.Date(2026, 11, 22, 13, 0, 0, 1, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(&key.PublicKey); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !bytes.HasPrefix(c.SignedBytes(), []byte("thiqa-audit-checkpoint-v1")) || len(c.SignedBytes()) != 25+8+32+8 {
		t.Fatalf("signed bytes: %x", c.SignedBytes())
	}
	line, err := c.MarshalLine()
	if err != nil {
		t.Fatal(err)
	}
	back, err := audit.ParseCheckpointLine(line)
	if err != nil {
		t.Fatalf("ParseCheckpointLine(%s): %v", line, err)
	}
	if back.Seq != c.Seq || !bytes.Equal(back.Hash, c.Hash) || !back.Time.Equal(c.Time) || !bytes.Equal(back.Signature, c.Signature) {
		t.Fatalf("round trip: %+v, want %+v", back, c)
	}
	if err := back.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	// Another key, another seq, another time: the signature fails.
	if err := c.Verify(&newKey(t).PublicKey); !errors.Is(err, audit.ErrCheckpointSignature) {
		t.Fatalf("other key: %v", err)
	}
	for _, edit := range []func(*audit.Checkpoint){
		func(c *audit.Checkpoint) { c.Seq++ },
		func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		func(c *audit.Checkpoint) { c.Hash = bytes.Repeat([]byte{0xac}, audit.HashSize) },
	} {
		e := c
		edit(&e)
		if err := e.Verify(&key.PublicKey); !errors.Is(err, audit.ErrCheckpointSignature) {
			t.Fatalf("edited checkpoint %+v verified: %v", e, err)
		}
	}
	for _, bad := range []string{
		``, `{}`, `null`, `[]`,
		strings.Replace(string(line), `"v":1`, `"v":2`, 1),
		strings.Replace(string(line), `"seq":41230`, `"seq":0`, 1),
		strings.Replace(string(line), `"seq":41230`, `"seq":-3`, 1),
		strings.Replace(string(line), `"hash":"ab`, `"hash":"`, 1),
		strings.Replace(string(line), `"time":"2026`, `"time":"1969`, 1),
		strings.Replace(string(line), `"time":"2026`, `"time":"3026`, 1),
		strings.Replace(string(line), `"sig":"`, `"sig":"!`, 1),
		strings.Replace(string(line), `"v":1`, `"v":1,"extra":true`, 1),
		strings.TrimSuffix(string(line), "\n") + `{}`,
	} {
		if _, err := audit.ParseCheckpointLine([]byte(bad)); !errors.Is(err, audit.ErrMalformedCheckpoint) {
			t.Errorf("ParseCheckpointLine(%q): %v, want ErrMalformedCheckpoint", bad, err)
		}
	}
}

func TestCheckpointWriterAndVerify(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	path := checkpointFile(t)
	reg := prometheus.NewRegistry()
	w, err := audit.NewCheckpointWriter(chain, key, path, audit.CheckpointWriterOptions{Now: clock(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Empty chain: nothing to vouch for.
	mustCheckpoint(t, w, false)
	chain.grow(5)
	c1 := mustCheckpoint(t, w, true)
	if c1.Seq != 5 {
		t.Fatalf("checkpoint at seq %d, want 5", c1.Seq)
	}
	if again := mustCheckpoint(t, w, false); again.Seq != 5 { // the head did not move
		t.Fatalf("unchanged head: %+v", again)
	}
	chain.grow(3)
	mustCheckpoint(t, w, true)
	chain.grow(10)
	mustCheckpoint(t, w, true)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint file: %v %v", st, err)
	}
	raw, _ := os.ReadFile(path)
	if n := bytes.Count(raw, []byte("\n")); n != 3 {
		t.Fatalf("%d lines, want 3:\n%s", n, raw)
	}
	rep := verifyFile(t, chain, path, &key.PublicKey)
	if !rep.OK() || rep.Verified != 3 || rep.Last.Seq != 18 || rep.IncompleteLastLine {
		t.Fatalf("VerifyCheckpoints: %s %+v", rep, rep)
	}
	for result, want := range map[string]float64{"written": 3, "unchanged": 2, "failed": 0} {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_audit_checkpoints_total", Help: "Attempts to write a signed audit checkpoint, by result (written, unchanged, failed)."}, []string{"result"})
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); !errors.As(err, &are) {
			t.Fatalf("thiqa_audit_checkpoints_total not registered: %v", err)
		}
		if got := testutil.ToFloat64(are.ExistingCollector.(*prometheus.CounterVec).WithLabelValues(result)); got != want {
			t.Errorf("checkpoints{result=%s} = %v, want %v", result, got, want)
		}
	}

	// The head moving back is refused by the writer (and counted).
	chain.mu.Lock()
	chain.recs, chain.head = chain.recs[:10], audit.Head{Seq: 10, Hash: chain.recs[9].Hash}
	chain.mu.Unlock()
	if _, _, err := w.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "behind the last checkpoint") {
		t.Fatalf("writer after the tail was removed: %v", err)
	}
	wantProblem(t, verifyFile(t, chain, path, &key.PublicKey), 3, audit.CheckpointRecordMissing, "chain ends at seq 10 — records were removed")
}

func TestCheckpointVerifyProblems(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	for range 4 {
		chain.grow(5)
		mustCheckpoint(t, w, true)
	}
	good, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(good), "\n")[:4]
	write := func(t *testing.T, ls ...string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "c.jsonl")
		if err := os.WriteFile(p, []byte(strings.Join(ls, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sign := func(t *testing.T, k *ecdsa.PrivateKey, seq int64, hash []byte, at time.Time) string {
		t.Helper()
		c, err := audit.SignCheckpoint(k, audit.Head{Seq: seq, Hash: hash}, at)
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		return string(l)
	}
	parsed := func(i int) audit.Checkpoint {
		c, err := audit.ParseCheckpointLine([]byte(lines[i]))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("Valid", func(t *testing.T) {
		if rep := verifyFile(t, chain, write(t, lines...), &key.PublicKey); !rep.OK() || rep.Verified != 4 {
			t.Fatalf("%s", rep)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if rep := verifyFile(t, chain, write(t), &key.PublicKey); !rep.OK() || rep.Verified != 0 || rep.Last != nil {
			t.Fatalf("%s", rep)
		}
	})
	t.Run("ForgedSignature", func(t *testing.T) {
		c := parsed(2)
		forged := sign(t, newKey(t), c.Seq, c.Hash, c.Time)
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], lines[1], forged, lines[3]), &key.PublicKey),
			3, audit.CheckpointBadSignature, "checkpoint 3 (seq 15): the signature does not verify")
	})
	t.Run("EditedSeq", func(t *testing.T) {
		edited := strings.Replace(lines[1], `"seq":10`, `"seq":11`, 1)
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], edited, lines[2]), &key.PublicKey),
			2, audit.CheckpointBadSignature, "signature does not verify")
	})
	t.Run("HashMismatch", func(t *testing.T) {
		c := parsed(1)
		other := sign(t, key, c.Seq, bytes.Repeat([]byte{7}, audit.HashSize), c.Time)
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], other, lines[2]), &key.PublicKey),
			2, audit.CheckpointHashMismatch, "checkpoint 2 (seq 10): record 10 does not have the hash")
	})
	t.Run("SeqBackwards", func(t *testing.T) {
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], lines[2], lines[1]), &key.PublicKey),
			3, audit.CheckpointSeqBackwards, "seq goes backwards")
	})
	t.Run("TimeBackwards", func(t *testing.T) {
		c0, c1 := parsed(0), parsed(1)
		early := sign(t, key, c1.Seq, c1.Hash, c0.Time.Add(-time.Millisecond))
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], early), &key.PublicKey),
			2, audit.CheckpointTimeBackwards, "goes backwards")
	})
	t.Run("RepeatedSeqSameHash", func(t *testing.T) {
		c := parsed(1)
		again := sign(t, key, c.Seq, c.Hash, c.Time.Add(time.Second))
		if rep := verifyFile(t, chain, write(t, lines[0], lines[1], again, lines[2]), &key.PublicKey); !rep.OK() || rep.Verified != 4 {
			t.Fatalf("%s", rep)
		}
	})
	t.Run("RepeatedSeqOtherHash", func(t *testing.T) {
		c := parsed(1)
		again := sign(t, key, c.Seq, bytes.Repeat([]byte{9}, audit.HashSize), c.Time.Add(time.Second))
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], lines[1], again), &key.PublicKey),
			3, audit.CheckpointHashMismatch, "another hash")
	})
	t.Run("IncompleteLastLineTolerated", func(t *testing.T) {
		rep := verifyFile(t, chain, write(t, lines[0], lines[1], lines[2][:40]), &key.PublicKey)
		if !rep.OK() || rep.Verified != 2 || !rep.IncompleteLastLine || rep.IncompleteLine != 3 {
			t.Fatalf("%s %+v", rep, rep)
		}
	})
	t.Run("BadLineInMiddle", func(t *testing.T) {
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], lines[1][:40]+"\n", lines[2]), &key.PublicKey),
			2, audit.CheckpointMalformed, "checkpoint 2: not a checkpoint line")
	})
	t.Run("IncompleteLineInMiddle", func(t *testing.T) {
		// A crash mid-write followed by a plain append glues two lines.
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], lines[1][:40], lines[2]), &key.PublicKey),
			2, audit.CheckpointMalformed, "not a checkpoint line")
	})
	t.Run("LongLine", func(t *testing.T) {
		wantProblem(t, verifyFile(t, chain, write(t, lines[0], strings.Repeat("x", 5000)+"\n", lines[1]), &key.PublicKey),
			2, audit.CheckpointMalformed, "longer than")
	})
	t.Run("ChainShorterThanCheckpoint", func(t *testing.T) {
		short := &fakeChain{}
		short.grow(12)
		wantProblem(t, verifyFile(t, short, write(t, lines...), &key.PublicKey),
			3, audit.CheckpointRecordMissing, "checkpoint 3 (seq 15): the chain ends at seq 12 — records were removed")
		shorter := &fakeChain{}
		shorter.grow(3)
		wantProblem(t, verifyFile(t, shorter, write(t, lines...), &key.PublicKey),
			1, audit.CheckpointRecordMissing, "checkpoint 1 (seq 5): the chain ends at seq 3")
	})
	t.Run("HeadBehind", func(t *testing.T) {
		behind := &fakeChain{}
		behind.grow(20)
		behind.head = audit.Head{Seq: 15, Hash: behind.recs[14].Hash}
		wantProblem(t, verifyFile(t, behind, write(t, lines...), &key.PublicKey),
			4, audit.CheckpointHeadBehind, "head (seq 15) is behind")
	})
}

func TestCheckpointWriterRepairsIncompleteLine(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	chain.grow(2)
	mustCheckpoint(t, w, true)
	chain.grow(2)
	mustCheckpoint(t, w, true)
	// A crash in the middle of the next write.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"seq":6,"ha`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || !rep.IncompleteLastLine || rep.Verified != 2 {
		t.Fatalf("before repair: %s %+v", rep, rep)
	}
	chain.grow(2)
	mustCheckpoint(t, w, true)
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || rep.IncompleteLastLine || rep.Verified != 3 || rep.Last.Seq != 6 {
		t.Fatalf("after repair: %s %+v", rep, rep)
	}

	// A complete but unreadable last line is not repaired: writing after it
	// would bury it.
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chain.grow(1)
	if _, _, err := w.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "last line") {
		t.Fatalf("writer after a bad last line: %v", err)
	}
}

func TestCheckpointWriterRefusesClockBehind(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	path := checkpointFile(t)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	w := newWriter(t, chain, key, path, func() time.Time { return now })
	chain.grow(1)
	mustCheckpoint(t, w, true)
	chain.grow(1)
	now = now.Add(-time.Hour)
	if _, _, err := w.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("clock behind: %v", err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewCheckpointWriter(chain, edKey, path, audit.CheckpointWriterOptions{}); err == nil {
		t.Fatal("a non-ECDSA checkpoint key was accepted")
	}
}

// TestCheckpointsDetectTailRemoval is the attack checkpoints exist for, on
// both databases: delete the last records and move audit_head back to the
// new end. The chain alone verifies; the checkpoint does not.
func TestCheckpointsDetectTailRemoval(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			l := newLog(t, db, nil)
			key := newKey(t)
			path := checkpointFile(t)
			w := newWriter(t, db, key, path, clock())
			appendN(t, l, 10, "tester")
			mustCheckpoint(t, w, true)
			recs := appendN(t, l, 10, "tester")
			mustCheckpoint(t, w, true)
			if rep := verifyFile(t, db, path, &key.PublicKey); !rep.OK() || rep.Verified != 2 || rep.Last.Seq != 20 {
				t.Fatalf("intact: %s", rep)
			}

			// Remove records 16 to 20 and make the head name record 15.
			newHead := recs[4] // seq 15
			hash := "x'" + hex.EncodeToString(newHead.Hash) + "'"
			if cfg.Driver == "postgres" {
				hash = "'\\x" + hex.EncodeToString(newHead.Hash) + "'::bytea"
			}
			tamper(t, cfg, "DELETE FROM audit_log WHERE seq > 15",
				"UPDATE audit_head SET seq = 15, hash = "+hash+" WHERE id = 1")
			if rep := verify(t, db); !rep.OK() {
				t.Fatalf("the chain alone should not see this: %s", rep)
			}
			wantProblem(t, verifyFile(t, db, path, &key.PublicKey), 2, audit.CheckpointRecordMissing,
				"checkpoint 2 (seq 20): the chain ends at seq 15 — records were removed")
		})
	}
}

// TestCheckpointsDetectRewrittenChain: the chain rewritten from record 8
// on with recomputed hashes (and head) verifies alone, not against the
// checkpoint.
func TestCheckpointsDetectRewrittenChain(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(12)
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	mustCheckpoint(t, w, true)
	// Rewrite from 8 on.
	chain.rewriteFrom(8)
	wantProblem(t, verifyFile(t, chain, path, &key.PublicKey), 1, audit.CheckpointHashMismatch,
		"checkpoint 1 (seq 12): record 12 does not have the hash the checkpoint names")
}

// TestCheckpointWritersShareAFile: two writers (as two processes would)
// checkpoint one file while the chain grows; the file stays in order.
func TestCheckpointWritersShareAFile(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	path := checkpointFile(t)
	tick := clock()
	ws := []*audit.CheckpointWriter{newWriter(t, chain, key, path, tick), newWriter(t, chain, key, path, tick)}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				chain.grow(1)
				if _, _, err := ws[i%2].Checkpoint(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || rep.Verified < 2 {
		t.Fatalf("%s", rep)
	}
}

func TestCheckpointWriterRun(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(1)
	path := checkpointFile(t)
	logs := &testenv.SyncBuffer{}
	w, err := audit.NewCheckpointWriter(chain, key, path, audit.CheckpointWriterOptions{Now: clock(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, 10*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < 3 && time.Now().Before(deadline); {
		chain.grow(1)
		time.Sleep(15 * time.Millisecond)
		raw, _ := os.ReadFile(path)
		n = bytes.Count(raw, []byte("\n"))
	}
	// A failure (the head moved back) is logged, and Run goes on.
	chain.mu.Lock()
	chain.head = audit.Head{Seq: 1, Hash: chain.recs[0].Hash}
	chain.mu.Unlock()
	for !strings.Contains(logs.String(), "checkpoint failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "behind the last checkpoint") {
		t.Fatalf("no failure logged:\n%s", logs.String())
	}
	raw, _ := os.ReadFile(path)
	if n := bytes.Count(raw, []byte("\n")); n < 3 {
		t.Fatalf("%d checkpoints written by Run, want at least 3", n)
	}
}

// TestCheckpointConfigNewWriterAndFinal: the configured writer publishes
// the checkpoint key's public key next to its file; Final writes a last
// checkpoint and logs it only when the head moved.
func TestCheckpointConfigNewWriterAndFinal(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(2)
	path := checkpointFile(t)
	c := audit.CheckpointConfig{CheckpointFile: path, CheckpointPublicKey: filepath.Join(filepath.Dir(path), "key.pem")}
	logs := &testenv.SyncBuffer{}
	w, err := c.NewWriter(chain, key, audit.CheckpointWriterOptions{Now: clock(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(c.CheckpointPublicKey); err != nil || !bytes.Contains(raw, []byte("PUBLIC KEY")) {
		t.Fatalf("published key: %q %v", raw, err)
	}
	w.Final()
	if !strings.Contains(logs.String(), "audit checkpoint written at shutdown") {
		t.Fatalf("no shutdown checkpoint logged:\n%s", logs.String())
	}
	before := logs.String()
	w.Final() // the head did not move: nothing written, nothing said
	if logs.String() != before {
		t.Fatalf("an unchanged head was logged:\n%s", logs.String())
	}
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || rep.Verified != 1 || rep.Last.Seq != 2 {
		t.Fatalf("VerifyCheckpoints: %s", rep)
	}
}
