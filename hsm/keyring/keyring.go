// Package keyring hands out the keys Thiqa's services sign with from the
// token and generates new ones, recording every generation and deletion in
// the audit log: the keys of the services themselves (OCSP responders, TSA
// units, the deployment's own signers: Ring, Ensure) and the subject keys of
// remote-signing credentials that the CA generates for a certificate request
// (Credentials), and the CA keys of the hierarchy and the key ceremony
// (CAToken). It knows keys and labels, nothing of certificates.
package keyring

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
)

// Auditor records what happens to the keys (an *audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// KeyMaker finds and generates keys on a token (an *hsm.Token).
type KeyMaker interface {
	FindKey(ctx context.Context, label string) (*hsm.Signer, error)
	GenerateKey(ctx context.Context, label string, kt hsm.KeyType) (*hsm.Signer, error)
}

// Lock runs fn while it holds the exclusive lock named name, which every
// node of a deployment shares (*store.DB: a database-wide lock).
type Lock interface {
	Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) error
}

// Ensure finds the key labelled label on tok, generating it (of type kt)
// when the token has none; generated says which. It never replaces a key,
// and records nothing: the caller records a generated key (Generated).
// Nodes sharing a token call EnsureOnce instead.
func Ensure(ctx context.Context, tok KeyMaker, label string, kt hsm.KeyType) (key *hsm.Signer, generated bool, err error) {
	k, err := tok.FindKey(ctx, label)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, false, fmt.Errorf("finding key %q: %w", label, err)
	}
	k, err = tok.GenerateKey(ctx, label, kt)
	if err != nil {
		return nil, false, fmt.Errorf("generating key %q: %w", label, err)
	}
	return k, true, nil
}

// EnsureOnce is Ensure under lock's lock named after label, for nodes that
// share a token and start at the same moment: each finds, else generates,
// in turn, so the first generates the key and the others find it. Without
// the lock both would find nothing and generate two keys with one label,
// which FindKey then refuses for good. The lock is released before the
// caller records a generated key (Generated).
func EnsureOnce(ctx context.Context, lock Lock, tok KeyMaker, label string, kt hsm.KeyType) (key *hsm.Signer, generated bool, err error) {
	err = lock.Exclusive(ctx, "hsm-key:"+label, func(ctx context.Context) error {
		var ensureErr error
		key, generated, ensureErr = Ensure(ctx, tok, label, kt)
		return ensureErr
	})
	if err != nil {
		return nil, false, err
	}
	return key, generated, nil
}

// InitActor is the actor of the key.generate records of `thiqa init` (and
// of any process that names no other).
const InitActor = "thiqa-init"

// Generated records k, just generated on the token by `thiqa init`, in the
// audit log: its URI, type and the SHA-256 of its public key.
func Generated(ctx context.Context, a Auditor, k *hsm.Signer) error {
	return GeneratedBy(ctx, a, k, InitActor)
}

// GeneratedBy is Generated for the process actor names ("thiqa-serve" for
// a key the server generates while it runs: a renewed OCSP responder or
// TSA unit, a service key first needed at start); "" is InitActor.
func GeneratedBy(ctx context.Context, a Auditor, k *hsm.Signer, actor string) error {
	if actor == "" {
		actor = InitActor
	}
	spki, err := spkiSHA256(k.Public())
	if err != nil {
		return err
	}
	_, err = a.Append(ctx, audit.Entry{
		Actor: actor, Action: "key.generate", Object: k.URI(), Outcome: "success",
		Details: map[string]any{"keyType": k.KeyType().String(), "spkiSHA256": spki},
	})
	if err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// Ring finds and generates the keys a service signs with all day (OCSP
// responders, TSA units) on the token: every key it hands out signs with
// session copies (hsm.Signer.UseSessionCopies) and every key it generates
// is recorded.
type Ring struct {
	// Token holds the keys, KeyType is the type of a generated key and
	// Audit records the generation, naming Actor ("" is InitActor).
	Token   *hsm.Token
	KeyType hsm.KeyType
	Audit   Auditor
	Actor   string
}

// Find returns the key labelled label, or an error wrapping fs.ErrNotExist
// (and hsm.ErrKeyNotFound) when the token has none.
func (r Ring) Find(ctx context.Context, label string) (*hsm.Signer, error) {
	s, err := r.Token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	s.UseSessionCopies()
	return s, nil
}

// Generate generates a key labelled label and records it in the audit log.
func (r Ring) Generate(ctx context.Context, label string) (*hsm.Signer, error) {
	s, err := r.Token.GenerateKey(ctx, label, r.KeyType)
	if err != nil {
		return nil, err
	}
	if err := GeneratedBy(ctx, r.Audit, s, r.Actor); err != nil {
		return nil, err
	}
	s.UseSessionCopies()
	return s, nil
}

// Key is Find as a crypto.Signer: a Ring is the OCSP responders' key
// store (revocation.KeyStore) and the TSA units' (timestamp.KeyStore).
func (r Ring) Key(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := r.Find(ctx, label)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// GenerateKey is Generate as a crypto.Signer (revocation.KeyStore,
// timestamp.KeyStore).
func (r Ring) GenerateKey(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := r.Generate(ctx, label)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Labels lists the labels of the keys on the token.
func (r Ring) Labels(ctx context.Context) ([]string, error) {
	keys, err := r.Token.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	labels := make([]string, len(keys))
	for i, key := range keys {
		labels[i] = key.Label
	}
	return labels, nil
}

// CredentialPrefix starts the label of every subject key generated on the
// token for a credential: the label is the credential ID.
const CredentialPrefix = "cred-"

// Credentials generates and destroys the subject keys of remote-signing
// credentials on the token (the CA's key generator): the credential ID is
// the key's label, cred-<32 hex digits>.
type Credentials struct {
	// Token holds the keys, KeyType is the type of a generated key and
	// Audit records each generation and deletion.
	Token   *hsm.Token
	KeyType hsm.KeyType
	Audit   Auditor
}

// GenerateKey creates a key labelled cred-<32 hex digits> on the token for
// a request under profile and records it, naming the authenticated caller.
func (k *Credentials) GenerateKey(ctx context.Context, profile string) (string, crypto.PublicKey, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("credential ID: %w", err)
	}
	id := CredentialPrefix + hex.EncodeToString(b[:])
	key, err := k.Token.GenerateKey(ctx, id, k.KeyType)
	if err != nil {
		return "", nil, err
	}
	actor := "unknown"
	if pr, ok := auth.FromContext(ctx); ok {
		actor = pr.Subject
	}
	spki, err := spkiSHA256(key.Public())
	if err != nil {
		return "", nil, err
	}
	if _, err := k.Audit.Append(ctx, audit.Entry{
		Actor: actor, Action: "key.generate", Object: key.URI(), Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"keyType": k.KeyType.String(), "spkiSHA256": spki, "profile": profile, "credentialID": id},
	}); err != nil {
		return "", nil, fmt.Errorf("writing audit record: %w", err)
	}
	return id, key.Public(), nil
}

// deleteActor is the actor of a key.delete record: the authenticated
// caller whose request destroyed the key (an officer's re-key, a refused
// keyInHSM request), as GenerateKey names who made it; "ca" when the
// request carries none (the server's own renewals).
func deleteActor(ctx context.Context) string {
	if pr, ok := auth.FromContext(ctx); ok && pr.Subject != "" {
		return pr.Subject
	}
	return "ca"
}

// DeleteKey destroys a key generated for a request the CA then refused, so
// that no orphan key stays on the token, and records it.
func (k *Credentials) DeleteKey(ctx context.Context, credentialID string) error {
	if err := k.Token.DeleteKey(ctx, credentialID); err != nil {
		return err
	}
	if _, err := k.Audit.Append(ctx, audit.Entry{
		Actor: deleteActor(ctx), Action: "key.delete", Object: credentialID, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"reason": "certificate request refused"},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// DestroyKey destroys the replaced key of a re-keyed credential on the
// token and records it; a key already gone is no error (a retried
// renewal).
func (k *Credentials) DestroyKey(ctx context.Context, label, reason string) error {
	err := k.Token.DeleteKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := k.Audit.Append(ctx, audit.Entry{
		Actor: deleteActor(ctx), Action: "key.delete", Object: label, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"reason": reason},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}
