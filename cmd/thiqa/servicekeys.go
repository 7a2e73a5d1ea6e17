package main

import (
	"context"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// tokenKeys are the credentials' subject keys on the token, as the CA and
// the renewal use them (ca.KeyGenerator, the renewal's key destroyer).
type tokenKeys = keyring.Credentials

// ensureServiceKey finds the key uri names on the token, generating it (of
// type kt) and recording the generation in the audit log when there is
// none. It never replaces a key; nodes starting at once generate it once
// (ensureKey).
func ensureServiceKey(ctx context.Context, p *platform, uri string, kt hsm.KeyType) (*hsm.Signer, error) {
	key, generated, err := ensureKey(ctx, p.cfg, p.db, p.token, uri, kt)
	if err != nil {
		return nil, err
	}
	if generated {
		if err := keyring.GeneratedBy(ctx, p.audit, key, p.actor); err != nil {
			return nil, err
		}
	}
	return key, nil
}
