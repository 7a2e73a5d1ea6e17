package hierarchy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/internal/pemcert"
)

// The deployment identity ties a data folder and a store together: the
// SHA-256 of the root CA certificate, which `thiqa init` records in the
// store and `thiqa serve` compares with the folder's root certificate
// before it serves anything. A cluster node whose folder holds another
// deployment's root, or that was given another deployment's (or an empty)
// database, refuses to start: it would otherwise issue certificates and
// time-stamps under one root while recording them in another's store.

// ErrDeploymentMismatch is returned (wrapped) when the data folder's root
// CA is not the root of the deployment the store belongs to.
var ErrDeploymentMismatch = errors.New("the data folder and the store belong to different deployments")

// ErrStoreEmpty is returned (wrapped) when the store holds no deployment
// at all: an empty database, most likely the wrong one.
var ErrStoreEmpty = errors.New("the store is empty")

// Identity is a data folder's deployment identity, read from its root CA
// certificate.
type Identity struct {
	// Root is the root CA certificate, read from Path.
	Root *x509.Certificate
	Path string
	// RootSHA256 is the SHA-256 of Root's DER, lower-case hex: what the
	// store records.
	RootSHA256 string
}

// ReadIdentity reads the deployment identity from the root CA certificate
// at path (PEM).
func ReadIdentity(path string) (*Identity, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the root CA certificate: %w", err)
	}
	c, err := pemcert.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate %s: %w", path, err)
	}
	sum := sha256.Sum256(c.Raw)
	return &Identity{Root: c, Path: path, RootSHA256: hex.EncodeToString(sum[:])}, nil
}

// Mismatch describes a data folder of this identity and a store recorded
// for the root with SHA-256 storeSHA256 at recordedAt (wrapping
// ErrDeploymentMismatch).
func (id *Identity) Mismatch(storeSHA256 string, recordedAt time.Time) error {
	return fmt.Errorf("%w: the folder's root CA %s (%s) has SHA-256 %s, but the store was initialised for the root with SHA-256 %s on %s: check store.dsn (or store.dsnEnv) and the data folder; nothing was changed",
		ErrDeploymentMismatch, id.Path, id.Root.Subject.CommonName, id.RootSHA256, storeSHA256, recordedAt.Format(time.RFC3339))
}
