package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestAssertionAlgorithmConfusion: a client assertion is verified only
// with the client's registered public keys and only under the asymmetric
// algorithms the provider lists: alg none, HMAC keyed with the public key
// (the classic confusion), a key the header carries itself, and a kid the
// client never registered are all invalid_client.
func TestAssertionAlgorithmConfusion(t *testing.T) {
	e := newEnv(t, false)
	claims := func() jwt.Claims {
		now := time.Now()
		return jwt.Claims{Issuer: e.client.ID, Subject: e.client.ID, Audience: jwt.Audience{e.srv.URL + PathToken},
			Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: randomToken(12)}
	}
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return encPart(b)
	}
	der, _ := x509.MarshalPKIXPublicKey(&e.ckey.PublicKey)
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &e.ckey.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	hmacWith := func(secret []byte) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := jwt.Signed(s).Claims(claims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	embedded := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, (&jose.SignerOptions{EmbedJWK: true}))
		if err != nil {
			t.Fatal(err)
		}
		a, err := jwt.Signed(s).Claims(claims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	unknownKid := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: e.ckey, KeyID: "k2"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := jwt.Signed(s).Claims(claims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for name, assertion := range map[string]string{
		"alg none":                     b64(map[string]string{"alg": "none", "kid": "k1"}) + "." + b64(claims()) + ".",
		"HS256 keyed with the DER key": hmacWith(der),
		"HS256 keyed with the JWK":     hmacWith(pubJWK),
		"key embedded in the header":   embedded(),
		"kid never registered":         unknownKid(),
	} {
		t.Run(name, func(t *testing.T) {
			f := e.tokenForm(e.mobileLogin())
			f.Set("client_assertion", assertion)
			if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
				t.Fatalf("%d %v", st, out)
			}
		})
	}
}
