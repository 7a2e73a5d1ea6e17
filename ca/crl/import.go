package crl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// Auditor records an import (an *audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Refused wraps a refusal of an import of the CRL read from source: it
// changed nothing, and says so.
func Refused(source string, err error) error {
	return fmt.Errorf("refused %s: %w; nothing was changed", source, err)
}

// Import keeps c, checked by CheckImported and read from source, in st
// unless the one kept is newer (a Refused error wrapping ErrNotNewer),
// and records the import by actor at now in log (action ca.crl.import).
func Import(ctx context.Context, st ImportedStore, log Auditor, c *ImportedCRL, source, actor string, now time.Time) error {
	if err := st.SaveImportedCRL(ctx, c, actor, now); err != nil {
		if errors.Is(err, ErrNotNewer) {
			return Refused(source, err)
		}
		return err
	}
	sum := sha256.Sum256(c.DER)
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "ca.crl.import", Object: c.Issuer + ".crl", Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"number": c.NumberString(), "thisUpdate": c.ThisUpdate, "nextUpdate": c.NextUpdate, "entries": c.Entries, "sha256": hex.EncodeToString(sum[:])},
	}); err != nil {
		return fmt.Errorf("root CRL imported, but writing the audit record failed: %w", err)
	}
	return nil
}

// NumberString is the CRL's number, "none" when it has none.
func (c *ImportedCRL) NumberString() string {
	if c.Number == nil {
		return "none"
	}
	return c.Number.String()
}
