package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
)

// ActPairwiseSecretCreate is the audit action recording the creation of
// the pairwise-subject secret.
const ActPairwiseSecretCreate = "oidc.pairwise-secret.create"

// minPairwiseSecret is the least a pairwise secret holds (Config.PairwiseSecret).
const minPairwiseSecret = 32

// CreatePairwiseSecret writes a fresh pairwise-subject secret (32 random
// bytes as hex, mode 0600) to path unless the file exists; it reports
// whether it wrote one.
func CreatePairwiseSecret(path string) (bool, error) {
	switch _, err := os.Stat(path); {
	case err == nil:
		return false, nil
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("pairwise secret %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	var b [minPairwiseSecret]byte
	_, _ = rand.Read(b[:])
	if err := atomicfile.WriteNew(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("writing the pairwise secret: %w", err)
	}
	return true, nil
}

// EnsurePairwiseSecret makes sure path holds a pairwise-subject secret:
// when it holds none, it records the creation by actor in log, then
// writes a fresh one (CreatePairwiseSecret). The record comes first: the
// other order lost it for good when the run stopped between the two (a run
// again finds the file); a secret not written after its record is written
// by a run again. It reports whether it wrote one.
func EnsurePairwiseSecret(ctx context.Context, path string, log Auditor, actor string) (bool, error) {
	switch _, err := os.Stat(path); {
	case err == nil:
		return false, nil
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("pairwise secret %s: %w", path, err)
	}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: ActPairwiseSecretCreate, Object: path, Outcome: audit.OutcomeSuccess}); err != nil {
		return false, fmt.Errorf("writing audit record: %w", err)
	}
	return CreatePairwiseSecret(path)
}

// ParsePairwiseSecret reads the secret CreatePairwiseSecret wrote (hex, at
// least 32 bytes); what names the file in the error.
func ParsePairwiseSecret(raw []byte, what string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) < minPairwiseSecret {
		return nil, fmt.Errorf("pairwise secret %s: want at least 32 bytes as hex", what)
	}
	return b, nil
}
