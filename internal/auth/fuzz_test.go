package auth

import (
	"crypto/elliptic"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzAuthenticateBearer feeds arbitrary Authorization header values to
// Authenticate: it must never panic, never authenticate, always classify the
// refusal, and never echo the presented value in its error.
func FuzzAuthenticateBearer(f *testing.F) {
	fx := newFixture(f, nil)
	other := newSigner(f, newECKey(f, elliptic.P256()))
	claims := fx.claims("NTROM-1234567", "agency", "operator")
	f.Add("Bearer " + signJWT(f, jose.SigningKey{Algorithm: jose.ES256, Key: mustKID(nil, other, fx.signer.KeyID())}, claims, nil))
	f.Add("Bearer " + signJWT(f, jose.SigningKey{Algorithm: jose.HS256, Key: []byte("-----BEGIN PUBLIC KEY----- not really a key")}, claims,
		map[jose.HeaderKey]any{"kid": fx.signer.KeyID()}))
	f.Add("Bearer " + unsignedJWT(f, map[string]string{"alg": "none", "kid": fx.signer.KeyID()}, claims))
	f.Add("Bearer " + unsignedJWT(f, map[string]any{"alg": "ES256", "crit": []string{"exp"}, "exp": 1}, claims) + "AAAA")
	f.Add("bearer a.b.c")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		r := bearerRequest("")
		r.Header.Set("Authorization", header)
		p, err := fx.auth.Authenticate(r)
		if err == nil || p != nil {
			t.Fatalf("header %q authenticated as %+v", header, p)
		}
		if !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("unclassified error %v", err)
		}
		if tok := strings.TrimSpace(strings.TrimPrefix(header, "Bearer ")); len(tok) >= 16 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error echoes the token: %v", err)
		}
	})
}
