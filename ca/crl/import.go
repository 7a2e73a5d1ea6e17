package crl

import (
	"bytes"
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

// ErrAlreadyImported is an import of the very CRL imported already (the
// same bytes): nothing is stored or recorded again.
var ErrAlreadyImported = errors.New("this CRL is the one imported already")

// Import keeps c, checked by CheckImported and read from source, in st
// unless the one kept is newer (a Refused error wrapping ErrNotNewer) or is
// c itself (ErrAlreadyImported, nothing changed), and records the import
// by actor at now in log (action ca.crl.import). The record is written
// before the CRL is stored, so a CRL kept always has its record: an import
// interrupted between the two is done again, and recorded again, by a run
// again; once recorded, a cancelled ctx no longer stops the save, and a
// store that then fails leaves a failure record after it.
func Import(ctx context.Context, st ImportedStore, log Auditor, c *ImportedCRL, source, actor string, now time.Time) error {
	kept, err := st.ImportedCRL(ctx, c.Issuer)
	switch {
	case errors.Is(err, ErrNoImported):
	case err != nil:
		return fmt.Errorf("reading the imported CRL of %s: %w", c.Issuer, err)
	case bytes.Equal(kept.DER, c.DER):
		return ErrAlreadyImported
	case !c.NewerThan(kept):
		return Refused(source, fmt.Errorf("%w: the CRL published has number %s, thisUpdate %s", ErrNotNewer, kept.NumberString(), kept.ThisUpdate.Format(time.RFC3339)))
	}
	sum := sha256.Sum256(c.DER)
	details := map[string]any{"number": c.NumberString(), "thisUpdate": c.ThisUpdate, "nextUpdate": c.NextUpdate, "entries": c.Entries, "sha256": hex.EncodeToString(sum[:])}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "ca.crl.import", Object: c.Issuer + ".crl", Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		return fmt.Errorf("writing the audit record (the CRL was not imported): %w", err)
	}
	// Recorded: a cancellation (an operator's Ctrl-C) must not stop the
	// save, nor the failure record that must follow the record otherwise.
	ctx = context.WithoutCancel(ctx)
	if err := st.SaveImportedCRL(ctx, c, actor, now); err != nil {
		details["error"] = err.Error()
		if _, aerr := log.Append(ctx, audit.Entry{Actor: actor, Action: "ca.crl.import", Object: c.Issuer + ".crl", Outcome: audit.OutcomeFailure, Details: details}); aerr != nil {
			err = errors.Join(err, fmt.Errorf("writing the failure's audit record: %w", aerr))
		}
		if errors.Is(err, ErrNotNewer) {
			return Refused(source, err)
		}
		return err
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
