package main

import (
	"context"

	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/timestamp"
)

// tokenKeys are the credentials' subject keys on the token, as the CA and
// the renewal use them (ca.KeyGenerator, the renewal's key destroyer).
type tokenKeys = keyring.Credentials

// unitKeys are the TSA unit keys (timestamp.KeyStore).
type unitKeys struct{ keyring.Ring }

// Key returns the unit key labelled label (fs.ErrNotExist when gone).
func (k unitKeys) Key(ctx context.Context, label string) (timestamp.UnitKey, error) {
	s, err := k.Find(ctx, label)
	if err != nil {
		return timestamp.UnitKey{}, err
	}
	return timestamp.UnitKey{Signer: s, Label: s.Label(), URI: s.URI()}, nil
}

// GenerateKey generates and audits a unit key.
func (k unitKeys) GenerateKey(ctx context.Context, label string) (timestamp.UnitKey, error) {
	s, err := k.Generate(ctx, label)
	if err != nil {
		return timestamp.UnitKey{}, err
	}
	return timestamp.UnitKey{Signer: s, Label: s.Label(), URI: s.URI()}, nil
}
