package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

// portalClients keeps clients by ID, refusing a taken ID as the store does.
type portalClients map[string]*Client

func (m portalClients) AddClient(_ context.Context, c *Client) error {
	if _, ok := m[c.ID]; ok {
		return ErrConflict
	}
	m[c.ID] = c
	return nil
}

func TestRegisterPortalIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st, log := portalClients{}, &memAudit{}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, js, err := RegisterPortal(ctx, st, log, key, "https://thiqa.example/my/callback", "thiqa-serve")
	if err != nil || !strings.HasPrefix(id, "thiqa-portal-") || js == nil || js.KeyID() == "" {
		t.Fatalf("RegisterPortal: %q, %v, %v", id, js, err)
	}
	again, _, err := RegisterPortal(ctx, st, log, key, "https://thiqa.example/my/callback", "thiqa-serve")
	if err != nil || again != id {
		t.Fatalf("registering again: %q, %v (want %q)", again, err, id)
	}
	moved, _, err := RegisterPortal(ctx, st, log, key, "https://id.example/my/callback", "thiqa-serve")
	if err != nil || moved == id {
		t.Fatalf("a new redirect URI: %q, %v (want a new client)", moved, err)
	}
	if n := len(log.find(ActionAddClient, "success")); n != 2 {
		t.Fatalf("%d registrations recorded, want 2", n)
	}
}
