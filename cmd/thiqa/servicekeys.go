package main

import (
	"context"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/timestamp"
)

// tokenKeys are the credentials' subject keys on the token, as the CA and
// the renewal use them (ca.KeyGenerator, the renewal's key destroyer).
type tokenKeys = keyring.Credentials

// ensureServiceKey finds the key uri names on the token, generating it (of
// type kt) and recording the generation in the audit log when there is
// none. It never replaces a key.
func ensureServiceKey(ctx context.Context, p *platform, uri string, kt hsm.KeyType) (*hsm.Signer, error) {
	key, generated, err := ensureKey(ctx, p.cfg, p.token, uri, kt)
	if err != nil {
		return nil, err
	}
	if generated {
		if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
			return nil, err
		}
	}
	return key, nil
}

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
