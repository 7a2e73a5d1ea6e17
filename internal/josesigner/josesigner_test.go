package josesigner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func mustECDSA(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerifyThroughGoJose(t *testing.T) {
	rsaKey := mustRSA(t)
	cases := []struct {
		name string
		key  crypto.Signer
		opts []Option
		want jose.SignatureAlgorithm
	}{
		{"ES256", mustECDSA(t, elliptic.P256()), nil, jose.ES256},
		{"ES384", mustECDSA(t, elliptic.P384()), nil, jose.ES384},
		{"ES512", mustECDSA(t, elliptic.P521()), nil, jose.ES512},
		{"PS256", rsaKey, nil, jose.PS256},
		{"RS256", rsaKey, []Option{WithAlgorithm(jose.RS256)}, jose.RS256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.key, "", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != tc.want {
				t.Fatalf("algorithm %s, want %s", s.Algorithm(), tc.want)
			}
			wantKID, err := KeyID(tc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != wantKID {
				t.Fatalf("kid %q, want thumbprint %q", s.KeyID(), wantKID)
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.want, Key: s}, nil)
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"hello":"thiqa"}`)
			obj, err := js.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			compact, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{tc.want})
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.Signatures[0].Header.KeyID; got != wantKID {
				t.Fatalf("kid header %q, want %q", got, wantKID)
			}
			got, err := parsed.Verify(tc.key.Public())
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if string(got) != string(payload) {
				t.Fatalf("payload %q", got)
			}
			// Verifying with the JWKS entry works too.
			jwk := s.Public()
			if !jwk.IsPublic() || jwk.Algorithm != string(tc.want) || jwk.Use != "sig" {
				t.Fatalf("unexpected public JWK %+v", jwk)
			}
			if _, err := parsed.Verify(jwk); err != nil {
				t.Fatalf("verify with JWK: %v", err)
			}
			// A tampered payload fails.
			parts := strings.Split(compact, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"hello":"mallory"}`))
			bad, err := jose.ParseSigned(strings.Join(parts, "."), []jose.SignatureAlgorithm{tc.want})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bad.Verify(tc.key.Public()); err == nil {
				t.Fatal("tampered payload verified")
			}
			// Another key of the same kind does not verify.
			var other crypto.PublicKey
			if ek, ok := tc.key.Public().(*ecdsa.PublicKey); ok {
				other = mustECDSA(t, ek.Curve).Public()
			} else {
				other = mustRSA(t).Public()
			}
			if _, err := parsed.Verify(other); err == nil {
				t.Fatal("signature verified with another key")
			}
		})
	}
}

// TestECDSARawSignatureVerifiesIndependently checks the R||S conversion with
// crypto/ecdsa directly, without go-jose.
func TestECDSARawSignatureVerifiesIndependently(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k := mustECDSA(t, c)
		s, err := New(k, "k1")
		if err != nil {
			t.Fatal(err)
		}
		// Many signatures so that short R or S values (leading zero bytes) occur.
		for i := 0; i < 300; i++ {
			msg := []byte{byte(i), byte(i >> 8), 'x'}
			sig, err := s.SignPayload(msg, s.Algorithm())
			if err != nil {
				t.Fatal(err)
			}
			size := (c.Params().BitSize + 7) / 8
			if len(sig) != 2*size {
				t.Fatalf("%s: signature length %d, want %d", c.Params().Name, len(sig), 2*size)
			}
			h := s.hash.New()
			h.Write(msg)
			r := new(big.Int).SetBytes(sig[:size])
			ss := new(big.Int).SetBytes(sig[size:])
			if !ecdsa.Verify(&k.PublicKey, h.Sum(nil), r, ss) {
				t.Fatalf("%s: R||S signature does not verify", c.Params().Name)
			}
		}
	}
}

// TestKeyIDIsRFC7638Thumbprint recomputes the thumbprint from the RFC 7638
// canonical JSON (required members, lexicographic order, no whitespace).
func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	k := mustECDSA(t, elliptic.P256())
	b64 := func(i *big.Int) string {
		buf := make([]byte, 32)
		i.FillBytes(buf)
		return base64.RawURLEncoding.EncodeToString(buf)
	}
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64(k.X) + `","y":"` + b64(k.Y) + `"}`
	sum := sha256.Sum256([]byte(canon))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	got, err := KeyID(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("KeyID %q, want %q", got, want)
	}

	r := mustRSA(t)
	e := big.NewInt(int64(r.E)).Bytes()
	canon = `{"e":"` + base64.RawURLEncoding.EncodeToString(e) + `","kty":"RSA","n":"` +
		base64.RawURLEncoding.EncodeToString(r.N.Bytes()) + `"}`
	sum = sha256.Sum256([]byte(canon))
	if got, _ := KeyID(r.Public()); got != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("RSA KeyID %q does not match the RFC 7638 computation", got)
	}
}

func TestPublicJWKMarshalsPublicOnly(t *testing.T) {
	k := mustECDSA(t, elliptic.P384())
	jwk := PublicJWK(k.Public(), "kid-1", "ES384")
	b, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["kid"] != "kid-1" || m["alg"] != "ES384" || m["use"] != "sig" || m["crv"] != "P-384" {
		t.Fatalf("unexpected JWK %s", b)
	}
	if _, ok := m["d"]; ok {
		t.Fatalf("private part in JWK %s", b)
	}
}

type failingSigner struct {
	crypto.Signer
	out []byte
	err error
}

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return f.out, f.err
}

func TestErrors(t *testing.T) {
	ec := mustECDSA(t, elliptic.P256())
	if _, err := New(nil, ""); err == nil {
		t.Error("nil signer accepted")
	}
	if _, err := New(ec, "", WithAlgorithm(jose.ES384)); err == nil {
		t.Error("ES384 accepted for a P-256 key")
	}
	if _, err := New(mustRSA(t), "", WithAlgorithm(jose.HS256)); err == nil {
		t.Error("HS256 accepted for an RSA key")
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(small, ""); err == nil {
		t.Error("RSA-1024 accepted")
	}
	if _, err := New(mustECDSA(t, elliptic.P224()), ""); err == nil {
		t.Error("P-224 accepted")
	}
	s, _ := New(ec, "")
	if _, err := s.SignPayload([]byte("x"), jose.ES384); err == nil {
		t.Error("signing with another algorithm accepted")
	}
	boom := errors.New("token removed")
	s, _ = New(failingSigner{Signer: ec, err: boom}, "")
	if _, err := s.SignPayload([]byte("x"), jose.ES256); !errors.Is(err, boom) {
		t.Errorf("want wrapped token error, got %v", err)
	}
	s, _ = New(failingSigner{Signer: ec, out: []byte{0x30, 0x03, 0x02, 0x01}}, "")
	if _, err := s.SignPayload([]byte("x"), jose.ES256); err == nil {
		t.Error("garbage DER accepted")
	}
	s, _ = New(failingSigner{Signer: ec, out: []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}}, "")
	if _, err := s.SignPayload([]byte("x"), jose.ES256); err == nil {
		t.Error("zero R accepted")
	}
}
