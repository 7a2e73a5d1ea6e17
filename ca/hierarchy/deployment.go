package hierarchy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
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

// Deployment is the identity a store records for the deployment it
// belongs to: the fingerprint of its root CA certificate, recorded once.
type Deployment struct {
	// RootSHA256 is the SHA-256 of the root CA certificate's DER, 64
	// lower-case hex digits.
	RootSHA256 string
	// CreatedAt is when the identity was recorded.
	CreatedAt time.Time
}

// Records is the store's side of the deployment identity (store.DB
// implements it).
type Records interface {
	// Deployment returns the recorded identity; false when none is.
	Deployment(ctx context.Context) (Deployment, bool, error)
	// RecordDeployment records d when no identity is recorded yet and
	// returns the one recorded afterwards (d, or the earlier one, never
	// replaced) and whether it was written now.
	RecordDeployment(ctx context.Context, d Deployment) (Deployment, bool, error)
	// AuditHead is the last record of the audit log.
	AuditHead(ctx context.Context) (audit.Head, error)
}

// Record records id in the store (`thiqa init`, once the hierarchy exists)
// or, when the store has an identity, checks that it is id's (Mismatch).
// The first recording is audited (deployment.record) with actor.
func (id *Identity) Record(ctx context.Context, rec Records, log Auditor, actor string) error {
	have, written, err := rec.RecordDeployment(ctx, Deployment{RootSHA256: id.RootSHA256})
	if err != nil {
		return err
	}
	if have.RootSHA256 != id.RootSHA256 {
		return id.Mismatch(have.RootSHA256, have.CreatedAt)
	}
	if written {
		if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "deployment.record", Object: id.RootSHA256,
			Outcome: audit.OutcomeSuccess, Details: map[string]any{"root": id.Root.Subject.String()}}); err != nil {
			return fmt.Errorf("writing audit record: %w", err)
		}
	}
	return nil
}

// Check refuses a store of another deployment (Mismatch) or an empty one:
// no identity and no audit record (ErrStoreEmpty; dataDir is the folder
// the error tells to initialise). A store made before identities existed
// (audit records, no identity) adopts id, and adopted says so.
func (id *Identity) Check(ctx context.Context, rec Records, dataDir string) (adopted bool, err error) {
	have, ok, err := rec.Deployment(ctx)
	if err != nil {
		return false, err
	}
	if ok {
		if have.RootSHA256 != id.RootSHA256 {
			return false, id.Mismatch(have.RootSHA256, have.CreatedAt)
		}
		return false, nil
	}
	head, err := rec.AuditHead(ctx)
	if err != nil {
		return false, err
	}
	if head.Seq == 0 {
		return false, fmt.Errorf("%w: no deployment, no audit record: check store.dsn (or store.dsnEnv), or run thiqa init --data %s for a new deployment",
			ErrStoreEmpty, dataDir)
	}
	if _, _, err := rec.RecordDeployment(ctx, Deployment{RootSHA256: id.RootSHA256}); err != nil {
		return false, err
	}
	return true, nil
}
