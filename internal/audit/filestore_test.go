package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestFileStoreChain: records appended to a file verify with the same
// hashing as the database's chain; concurrent appends stay one chain; an
// edited, reordered or broken line is the first break, named by its seq.
func TestFileStoreChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ceremony.log")
	st := audit.NewFileStore(path)
	if rep := verify(t, st); !rep.OK() || rep.Verified != 0 {
		t.Fatalf("missing file: %s", rep)
	}
	l := newLog(t, st, nil)
	appendN(t, l, 3, "officer-1")
	// Details with characters JSON likes to escape survive the round trip.
	if _, err := l.Append(context.Background(), audit.Entry{Actor: "officer-2", Action: "root.create", Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"subject": "CN=<Root> & Co", "unicode": "ثقة"}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { appendN(t, l, 5, "officer-"+string(rune('a'+i))) })
	}
	wg.Wait()
	rep := verify(t, st)
	if !rep.OK() || rep.Verified != 24 || rep.Head.Seq != 24 {
		t.Fatalf("intact file: %s", rep)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", info.Mode(), err)
	}
	original, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(original), "\n")

	edit := func(t *testing.T, body string) audit.Report {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(path, original, 0o600) })
		rep, err := audit.Verify(context.Background(), st)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return rep
	}
	t.Run("edited field", func(t *testing.T) {
		rep := edit(t, strings.Replace(string(original), `"actor":"officer-2"`, `"actor":"mallory"`, 1))
		wantBreak(t, rep, 4, audit.BreakHashMismatch)
	})
	t.Run("edited details", func(t *testing.T) {
		rep := edit(t, strings.Replace(string(original), `\u0026 Co`, `\u0026 Cx`, 1))
		wantBreak(t, rep, 4, audit.BreakHashMismatch)
	})
	t.Run("deleted line", func(t *testing.T) {
		rep := edit(t, strings.Join(append(append([]string{}, lines[:6]...), lines[7:]...), ""))
		wantBreak(t, rep, 7, audit.BreakSeqGap)
	})
	t.Run("broken line", func(t *testing.T) {
		body := strings.Join(lines[:2], "") + "{not json\n" + strings.Join(lines[3:], "")
		err := os.WriteFile(path, []byte(body), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(path, original, 0o600) })
		_, err = audit.Verify(context.Background(), st)
		var le *audit.LineError
		if !errors.As(err, &le) || le.Line != 3 {
			t.Fatalf("want a LineError at line 3, got %v", err)
		}
		// Nothing is appended to a broken file.
		if _, err := l.Append(context.Background(), audit.Entry{Actor: "x", Action: "y", Outcome: audit.OutcomeSuccess}); err == nil {
			t.Fatal("appended to a broken file")
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, []byte(body)) {
			t.Fatal("a refused append changed the file")
		}
	})
	if rep := verify(t, st); !rep.OK() {
		t.Fatalf("restored file: %s", rep)
	}
}
