package backup

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// placeholderHash and placeholderSig in a fuzzed checkpoint line stand for
// the hash of the chain's record at the line's seq and for a signature by
// the checkpoint key: the fuzzer cannot find either, and without them
// every line would be archived as invalid.
var (
	placeholderHash = strings.Repeat("00", audit.HashSize)
	placeholderSig  = "AA=="
)

// fillPlaceholders returns src with every checkpoint line that uses the
// placeholders rewritten to name the chain's record and be signed by key.
func fillPlaceholders(t *testing.T, c *pointChain, key *ecdsa.PrivateKey, src []byte) []byte {
	var out []byte
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line = src[:i+1]
		}
		src = src[len(line):]
		cp, err := audit.ParseCheckpointLine(line)
		if err != nil || !bytes.HasSuffix(line, []byte("\n")) {
			out = append(out, line...)
			continue
		}
		if bytes.Contains(line, []byte(`"hash":"`+placeholderHash+`"`)) && cp.Seq <= int64(len(c.recs)) {
			cp.Hash = c.recs[cp.Seq-1].Hash
		}
		if bytes.Contains(line, []byte(`"sig":"`+placeholderSig+`"`)) {
			if cp, err = audit.SignCheckpoint(key, audit.Head{Seq: cp.Seq, Hash: cp.Hash}, cp.Time); err != nil {
				t.Fatal(err)
			}
		}
		l, err := cp.MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l...)
	}
	return out
}

// FuzzSplitCheckpoints: whatever the checkpoint file a restore is given
// (the backup's copy or a newer one the operator names), splitting it
// never panics; the kept lines followed by the archived ones are the
// file's complete lines, unchanged and in order; every kept line is a
// checkpoint of this key naming a record of the restored chain, in order;
// and the restore then writes a checkpoint file that verifies.
func FuzzSplitCheckpoints(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	line := func(seq int64, hash, tm, sig string) string {
		if hash == "" {
			hash = placeholderHash
		}
		if sig == "" {
			sig = placeholderSig
		}
		return `{"v":1,"seq":` + strconv.FormatInt(seq, 10) + `,"hash":"` + hash + `","time":"` + tm + `","sig":"` + sig + `"}` + "\n"
	}
	f.Add([]byte(""))
	f.Add([]byte(line(3, "", "2026-11-22T13:00:00Z", "") + line(7, "", "2026-11-22T14:00:00.5Z", "")))
	f.Add([]byte(line(3, "", "2026-11-22T13:00:00Z", "") + line(20, "", "2026-11-22T14:00:00Z", "") + line(8, "", "2026-11-22T15:00:00Z", "")))
	f.Add([]byte(line(5, "", "2026-11-22T13:00:00Z", "") + line(4, "", "2026-11-22T14:00:00Z", "") + "{\"v\":1,\"seq\""))
	f.Add([]byte(line(5, strings.Repeat("ab", audit.HashSize), "2026-11-22T13:00:00Z", "") + line(6, "", "2026-11-22T12:00:00Z", "MEUCIQ==")))
	f.Add([]byte("not json\n\n" + line(16, "", "2026-11-22T13:00:00Z", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		c := newPointChain(16)
		src := fillPlaceholders(t, c, key, data)
		kept, archived, s, err := splitCheckpoints(ctx, c, src, key.Public())
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		complete := src[:bytes.LastIndexByte(src, '\n')+1]
		// The serial floor's evidence: the last complete line that is a
		// checkpoint of the key, found from the end as from the start.
		var want *audit.Checkpoint
		for _, l := range bytes.SplitAfter(complete, []byte("\n")) {
			if cp, err := audit.ParseCheckpointLine(l); len(l) > 0 && err == nil && cp.Verify(key.Public()) == nil {
				want = &cp
			}
		}
		if got, ok := newestSignedTime(src, key.Public()); ok != (want != nil) || (ok && !got.Equal(want.Time)) {
			t.Fatalf("newestSignedTime = %v, %v; the last signed line says %v", got, ok, want)
		}
		if !bytes.Equal(append(append([]byte{}, kept...), archived...), complete) {
			t.Fatalf("kept %q + archived %q is not the file's complete lines %q", kept, archived, complete)
		}
		if n := bytes.Count(kept, []byte("\n")); n != s.kept {
			t.Fatalf("%d kept lines counted as %d", n, s.kept)
		}
		if n := bytes.Count(archived, []byte("\n")); n != s.archived {
			t.Fatalf("%d archived lines counted as %d", n, s.archived)
		}
		var last *audit.Checkpoint
		for _, l := range bytes.SplitAfter(kept, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			cp, err := audit.ParseCheckpointLine(l)
			if err != nil || cp.Verify(key.Public()) != nil {
				t.Fatalf("kept a line that is no checkpoint of the key: %q", l)
			}
			if cp.Seq > int64(len(c.recs)) || !bytes.Equal(cp.Hash, c.recs[cp.Seq-1].Hash) {
				t.Fatalf("kept a checkpoint naming no record of the chain: %q", l)
			}
			if last != nil && (cp.Seq < last.Seq || cp.Time.Before(last.Time)) {
				t.Fatalf("kept checkpoints out of order: %q after seq %d", l, last.Seq)
			}
			last = &cp
		}
		if last != nil && last.Time.After(time.Now()) {
			return // a checkpoint from the future: the restore refuses the clock
		}
		cpPath := filepath.Join(t.TempDir(), "audit", "checkpoints.jsonl")
		if _, err := restoreCheckpoints(ctx, c, src, cpPath, key, time.Now()); err != nil {
			t.Fatalf("restore of %q: %v", src, err)
		}
	})
}
