package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
)

// Auditor records in the audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Write builds the list o describes, records it in log (action tsl.build
// by actor: sequence, territory, number of services, SHA-256, nextUpdate
// and signer, the key's name) and writes it to path, creating its folder
// and replacing a list there whole. The record comes first, so that no
// signed list exists that the log does not know; a crash between the two
// leaves a number recorded as issued that no file shows, and Sequence
// never hands it out again.
func Write(ctx context.Context, o Options, path string, log Auditor, actor, signer string) error {
	raw, err := Build(o)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	if _, err := log.Append(ctx, audit.Entry{
		Actor: actor, Action: actBuild, Object: path, Outcome: "success",
		Details: map[string]any{"sequence": o.Sequence, "territory": o.Territory, "services": len(o.Services), "sha256": hex.EncodeToString(sum[:]),
			"nextUpdate": o.NextUpdate.Format(time.RFC3339), "signer": signer},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.Write(path, raw, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// actBuild is the audit action of a list written (Write).
const actBuild = "tsl.build"

// IssuedLists reads the audit records about the objects named, newest
// first, at most limit (package store implements it): Sequence reads the
// tsl.build records of a list's path.
type IssuedLists interface {
	Trail(ctx context.Context, objects []string, limit int) ([]ca.TrailEntry, error)
}

// ErrSequenceIssued is returned (wrapped) for a requested sequence number
// that the audit log records as issued, or below one it does.
var ErrSequenceIssued = errors.New("tsl build: that TSLSequenceNumber was already issued")

// issuedScan is how many of the newest records about a list's path
// Sequence reads: every tsl.build among them, far more than the lists a
// deployment issues.
const issuedScan = 1000

// Sequence returns the TSLSequenceNumber of the next list written to
// path. TS 119 612 has it increase with every list issued, and a list
// counts as issued once the audit log records it (Write records before
// it writes the file). With requested 0 it is one more than the greater
// of the list at path (NextSequenceAt) and the highest number the log
// records for path; a requested number is refused (ErrSequenceIssued)
// unless it is above every recorded one.
func Sequence(ctx context.Context, path string, requested int, issued IssuedLists) (int, error) {
	objects := []string{path}
	if abs, err := filepath.Abs(path); err == nil && abs != path {
		objects = append(objects, abs)
	}
	recs, err := issued.Trail(ctx, objects, issuedScan)
	if err != nil {
		return 0, fmt.Errorf("reading which trusted lists the audit log records as issued: %w", err)
	}
	last, lastSeq := 0, int64(0)
	for _, r := range recs {
		if r.Action != actBuild {
			continue
		}
		var d struct {
			Sequence int `json:"sequence"`
		}
		if err := json.Unmarshal(r.Details, &d); err != nil {
			return 0, fmt.Errorf("audit record %d (%s): %w", r.Seq, actBuild, err)
		}
		if d.Sequence > last {
			last, lastSeq = d.Sequence, r.Seq
		}
	}
	if requested == 0 {
		return max(NextSequenceAt(path), last+1), nil
	}
	if requested <= last {
		return 0, fmt.Errorf("%w: --sequence %d, but audit record %d records list %d as issued to %s (each list takes a higher number): leave --sequence out to take %d",
			ErrSequenceIssued, requested, lastSeq, last, path, max(NextSequenceAt(path), last+1))
	}
	return requested, nil
}

// NextSequenceAt is one more than the sequence number of the list in the
// file path (NextSequence), else 1.
func NextSequenceAt(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 1
	}
	return NextSequence(raw)
}
