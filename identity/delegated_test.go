package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// grantsByID answers Grant from a map; a missing ID is ErrNotFound, "broken" a failure.
type grantsByID map[string]*Grant

func (g grantsByID) Grant(_ context.Context, id string) (*Grant, error) {
	if id == "broken" {
		return nil, errors.New("store down")
	}
	if gr, ok := g[id]; ok {
		return gr, nil
	}
	return nil, ErrNotFound
}

func TestCSCDelegatedIssuer(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	grants := grantsByID{"live": {Redeemed: true}, "revoked": {Redeemed: true, Revoked: true}, "unredeemed": {}}
	d, err := CSCDelegatedIssuer("https://id.example", "https://id.example"+PathCSC, key, grants)
	if err != nil {
		t.Fatal(err)
	}
	if d.Issuer != "https://id.example" || d.Audience != "https://id.example"+PathCSC || len(d.Keys) != 1 || d.Role != policies.RoleCitizen ||
		len(d.Actions) != 1 || d.Actions[0] != policies.ActionSign || len(d.Scopes) != 2 || d.Scopes[0] != auth.ScopeService || d.Scopes[1] != auth.ScopeCredential {
		t.Fatalf("delegated issuer %+v", d)
	}
	for id, want := range map[string]bool{"live": false, "revoked": true, "unredeemed": true, "purged": true} {
		if got, err := d.Revoked(context.Background(), id); err != nil || got != want {
			t.Errorf("grant %s: revoked %v, %v (want %v)", id, got, err, want)
		}
	}
	if _, err := d.Revoked(context.Background(), "broken"); err == nil {
		t.Error("a failing store counts as an answer")
	}
}
