package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/hsm"
)

// CAToken is a token as the CA hierarchy (hierarchy.Token: the online
// token) and the key ceremony (ceremony.Token: the offline token) use it:
// a missing key is ca.ErrKeyNotFound and each key it generates is recorded
// in the audit log, when there is one.
type CAToken struct {
	// Token holds the CA keys; Audit, when not nil, records each
	// generation (Generated).
	Token *hsm.Token
	Audit Auditor
}

// FindKey returns the key labelled label, or an error wrapping
// ca.ErrKeyNotFound (and hsm.ErrKeyNotFound) when the token has none.
func (t CAToken) FindKey(ctx context.Context, label string) (ca.TokenKey, error) {
	k, err := t.Token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", ca.ErrKeyNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// GenerateKey generates a key of keyType (hsm.ParseKeyType: "ec-p384",
// "rsa-4096", …) labelled label and records it when there is an audit log.
func (t CAToken) GenerateKey(ctx context.Context, label, keyType string) (ca.TokenKey, error) {
	kt, err := hsm.ParseKeyType(keyType)
	if err != nil {
		return nil, err
	}
	k, err := t.Token.GenerateKey(ctx, label, kt)
	if err != nil {
		return nil, err
	}
	if t.Audit != nil {
		if err := Generated(ctx, t.Audit, k); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// DeleteKey destroys the key labelled label; a label the token does not
// hold is an error wrapping ca.ErrKeyNotFound (and hsm.ErrKeyNotFound).
func (t CAToken) DeleteKey(ctx context.Context, label string) error {
	err := t.Token.DeleteKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return fmt.Errorf("%w: %w", ca.ErrKeyNotFound, err)
	}
	return err
}

// Close closes the token.
func (t CAToken) Close() error { return t.Token.Close() }

// Keys lists the keys on the token: their labels, pkcs11: URIs and public
// keys.
func (t CAToken) Keys(ctx context.Context) ([]hierarchy.KeyInfo, error) {
	keys, err := t.Token.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]hierarchy.KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = hierarchy.KeyInfo{Label: k.Label, URI: k.URI, Public: k.Public}
	}
	return out, nil
}
