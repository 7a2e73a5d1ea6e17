package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/timestamp"
)

// serviceKeys finds and generates the keys a service signs with all day
// (OCSP responders, TSA units) on the token: every key it hands out signs
// with session copies (hsm/sessioncopy.go) and every key it generates is
// audited.
type serviceKeys struct {
	token   *hsm.Token
	keyType hsm.KeyType
	audit   *audit.Log
}

// find returns the key labelled label, or an error wrapping fs.ErrNotExist
// when the token has none.
func (k serviceKeys) find(ctx context.Context, label string) (*hsm.Signer, error) {
	s, err := k.token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	s.UseSessionCopies()
	return s, nil
}

// generate generates a key labelled label and records it in the audit log.
func (k serviceKeys) generate(ctx context.Context, label string) (*hsm.Signer, error) {
	s, err := k.token.GenerateKey(ctx, label, k.keyType)
	if err != nil {
		return nil, err
	}
	if err := auditKeyGenerated(ctx, k.audit, s); err != nil {
		return nil, err
	}
	s.UseSessionCopies()
	return s, nil
}

// responderKeys are the OCSP responders' keys (revocation.KeyStore).
type responderKeys struct{ serviceKeys }

// Key returns the responder key labelled label (fs.ErrNotExist when gone).
func (k responderKeys) Key(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := k.find(ctx, label)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// GenerateKey generates and audits a responder key.
func (k responderKeys) GenerateKey(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := k.generate(ctx, label)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// unitKeys are the TSA unit keys (timestamp.KeyStore).
type unitKeys struct{ serviceKeys }

// Labels lists the labels of the keys on the token.
func (k unitKeys) Labels(ctx context.Context) ([]string, error) {
	keys, err := k.token.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	labels := make([]string, len(keys))
	for i, key := range keys {
		labels[i] = key.Label
	}
	return labels, nil
}

// Key returns the unit key labelled label (fs.ErrNotExist when gone).
func (k unitKeys) Key(ctx context.Context, label string) (timestamp.UnitKey, error) {
	s, err := k.find(ctx, label)
	if err != nil {
		return timestamp.UnitKey{}, err
	}
	return timestamp.UnitKey{Signer: s, Label: s.Label(), URI: s.URI()}, nil
}

// GenerateKey generates and audits a unit key.
func (k unitKeys) GenerateKey(ctx context.Context, label string) (timestamp.UnitKey, error) {
	s, err := k.generate(ctx, label)
	if err != nil {
		return timestamp.UnitKey{}, err
	}
	return timestamp.UnitKey{Signer: s, Label: s.Label(), URI: s.URI()}, nil
}
