package keyring

import (
	"context"
	"crypto"
	"slices"
	"sync"

	"github.com/thiqa/thiqa/hsm"
)

// CredentialLabels names the key of a credential on the token when it is
// not the credential ID (a re-keyed credential's current certificate names
// its key): "" for the ID itself.
type CredentialLabels interface {
	CredentialKeyLabel(ctx context.Context, credentialID string) (string, error)
}

// maxCachedKeys bounds a Resolver's cache; it is emptied when full.
const maxCachedKeys = 10_000

// Resolver finds credentials' keys on the token and keeps the signers
// found (at most 10,000; the cache is emptied when full).
type Resolver struct {
	token       *hsm.Token
	labels      CredentialLabels
	metricLabel string

	mu   sync.Mutex
	keys map[string]*hsm.Signer
}

// NewResolver returns a Resolver over tok; labels (nil: the credential ID
// is the label) names re-keyed credentials' keys, and metricLabel is the
// value of the HSM metrics' key label for every key it finds (never the
// credential ID).
func NewResolver(tok *hsm.Token, labels CredentialLabels, metricLabel string) *Resolver {
	return &Resolver{token: tok, labels: labels, metricLabel: metricLabel}
}

// Key returns the signer of the credential's key.
func (r *Resolver) Key(ctx context.Context, credentialID string) (crypto.Signer, error) {
	label := credentialID
	if r.labels != nil {
		l, err := r.labels.CredentialKeyLabel(ctx, credentialID)
		if err != nil {
			return nil, err
		}
		if l != "" {
			label = l
		}
	}
	r.mu.Lock()
	k, ok := r.keys[label]
	r.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := r.token.FindKey(ctx, label)
	if err != nil {
		return nil, err // hsm's error names the label
	}
	k.SetMetricLabel(r.metricLabel)
	r.mu.Lock()
	if r.keys == nil || len(r.keys) >= maxCachedKeys {
		r.keys = map[string]*hsm.Signer{}
	}
	r.keys[label] = k
	r.mu.Unlock()
	return k, nil
}

// ProfileKeys returns the look-up of credentials' keys on tok for the
// signing service: a key's signatures count under its certificate profile
// in the HSM metrics, never under the credential ID, and the keys of the
// hot profiles (an agency's seal, signing all day) sign with session
// copies (hsm.Signer.UseSessionCopies); a citizen's key signs once per
// authorisation and is not worth a copy.
func ProfileKeys(tok *hsm.Token, hot ...string) func(ctx context.Context, label, profile string) (crypto.Signer, error) {
	return func(ctx context.Context, label, profile string) (crypto.Signer, error) {
		key, err := tok.FindKey(ctx, label)
		if err != nil {
			return nil, err
		}
		key.SetMetricLabel(profile)
		if slices.Contains(hot, profile) {
			key.UseSessionCopies()
		}
		return key, nil
	}
}
