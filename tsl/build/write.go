package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
// and replacing a list there whole.
func Write(ctx context.Context, o Options, path string, log Auditor, actor, signer string) error {
	raw, err := Build(o)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	if _, err := log.Append(ctx, audit.Entry{
		Actor: actor, Action: "tsl.build", Object: path, Outcome: "success",
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

// NextSequenceAt is one more than the sequence number of the list in the
// file path (NextSequence), else 1.
func NextSequenceAt(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 1
	}
	return NextSequence(raw)
}
