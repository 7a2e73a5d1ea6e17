package auth

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/policies"
)

func TestValidTokenAccepted(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.sign(t, f.claims("NTROM-1234567", "agency"))
	p, err := f.auth.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "NTROM-1234567" || p.OrganizationIdentifier != "NTROM-1234567" || p.CivilNumber != "" {
		t.Fatalf("principal %+v", p)
	}
	if p.Method != MethodJWT || p.Issuer != testIssuer || !p.Has(policies.RoleAgency) || p.Has(policies.RoleCitizen) {
		t.Fatalf("principal %+v", p)
	}
	if !p.Allowed(policies.ActionSeal) || p.Allowed(policies.ActionSign) {
		t.Fatal("agency permissions wrong")
	}
	if want := f.clock.Now().Add(10 * time.Minute).Truncate(time.Second); !p.Expires.Equal(want) {
		t.Fatalf("principal expires %v, want the token's exp %v", p.Expires, want)
	}

	tok = f.sign(t, f.claims("12345678", "citizen", "citizen"))
	p, err = f.auth.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.CivilNumber != "12345678" || rolesOf(p) != "citizen" {
		t.Fatalf("citizen principal %+v", p)
	}
	// The scheme is case-insensitive.
	r := bearerRequest("")
	r.Header.Set("Authorization", "bearer "+tok)
	if _, err := f.auth.Authenticate(r); err != nil {
		t.Fatalf("lower-case scheme: %v", err)
	}
}

// TestTokenRefused runs each way a token can be wrong and checks that it is
// refused as invalid credentials.
func TestTokenRefused(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	other := newSigner(t, newECKey(t, elliptic.P256()))
	withClaim := func(k string, v any) map[string]any {
		c := f.claims("NTROM-1", "agency")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	valid := f.sign(t, f.claims("NTROM-1", "agency"))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
		`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","sub":"NTROM-666","exp":`+
			strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`,"roles":["operator"]}`)) + "." + parts[2]

	cases := map[string]struct {
		token string
		want  string
	}{
		"expired":            {f.sign(t, withClaim("exp", now.Add(-2*time.Minute).Unix())), "expired"},
		"not yet valid":      {f.sign(t, withClaim("nbf", now.Add(2*time.Minute).Unix())), "not valid yet"},
		"issued in future":   {f.sign(t, withClaim("iat", now.Add(2*time.Minute).Unix())), "future"},
		"wrong issuer":       {f.sign(t, withClaim("iss", "https://evil.example")), "issuer"},
		"wrong audience":     {f.sign(t, withClaim("aud", []string{"other-api"})), "audience"},
		"no audience":        {f.sign(t, withClaim("aud", nil)), "audience"},
		"missing exp":        {f.sign(t, withClaim("exp", nil)), "exp"},
		"missing sub":        {f.sign(t, withClaim("sub", nil)), "sub"},
		"unknown role":       {f.sign(t, withClaim("roles", []string{"agency", "superuser"})), "unknown role"},
		"no roles":           {f.sign(t, withClaim("roles", nil)), "no roles"},
		"roles not an array": {f.sign(t, withClaim("roles", "agency")), ""},
		"unknown kid":        {signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: other}, f.claims("NTROM-1", "agency"), nil), "key ID"},
		"other key same kid": {signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: mustKID(t, other, f.signer.KeyID())}, f.claims("NTROM-1", "agency"), nil), "does not verify"},
		"tampered payload":   {tampered, "does not verify"},
		"alg none": {unsignedJWT(t, map[string]string{"alg": "none", "typ": "JWT", "kid": f.signer.KeyID()},
			f.claims("NTROM-1", "operator")), "malformed"},
		"wrong typ": {signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: f.signer}, f.claims("NTROM-1", "agency"),
			map[jose.HeaderKey]any{jose.HeaderType: "secevent+jwt"}), "type"},
		"garbage":        {"a.b.c", "malformed"},
		"two parts":      {"abc.def", "compact JWS"},
		"bad characters": {"abc.d e f.ghi", "compact JWS"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := f.auth.Authenticate(bearerRequest(tc.token))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if p != nil {
				t.Fatal("principal returned with an error")
			}
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("error %v does not wrap ErrInvalidCredentials", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if len(tc.token) > 8 && strings.Contains(err.Error(), tc.token) {
				t.Fatal("error echoes the token")
			}
		})
	}
}

// mustKID wraps s so that its JWK carries kid (to impersonate a known key ID).
func mustKID(_ testing.TB, s *josesigner.Signer, kid string) jose.OpaqueSigner {
	return kidSigner{Signer: s, kid: kid}
}

type kidSigner struct {
	*josesigner.Signer
	kid string
}

func (k kidSigner) Public() *jose.JSONWebKey {
	j := k.Signer.Public()
	j.KeyID = k.kid
	return j
}

func TestClockSkew(t *testing.T) {
	f := newFixture(t, func(ic *IssuerConfig) { ic.ClockSkew = 30 * time.Second })
	now := f.clock.Now()
	c := f.claims("12345678", "citizen")
	c["exp"] = now.Add(-20 * time.Second).Unix()
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, c))); err != nil {
		t.Fatalf("expired within skew refused: %v", err)
	}
	c["exp"] = now.Add(-40 * time.Second).Unix()
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, c))); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("expired beyond skew: %v", err)
	}
	c = f.claims("12345678", "citizen")
	c["nbf"] = now.Add(20 * time.Second).Unix()
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, c))); err != nil {
		t.Fatalf("nbf within skew refused: %v", err)
	}
}

// TestKeyConfusion signs HS256 tokens with the issuer's public key as the
// HMAC secret, in every encoding an attacker might try; none may pass, whether
// the issuer's key is ECDSA or RSA.
func TestKeyConfusion(t *testing.T) {
	rsaSigner := newSigner(t, newRSAKey(t))
	ecSigner := newSigner(t, newECKey(t, elliptic.P256()))
	for _, s := range []*josesigner.Signer{rsaSigner, ecSigner} {
		f := newFixture(t, nil, s)
		der, err := x509.MarshalPKIXPublicKey(s.Public().Key)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		jwkJSON, _ := s.Public().MarshalJSON()
		jwksFile, _ := os.ReadFile(f.jwks)
		for _, secret := range [][]byte{der, pemBytes, jwkJSON, jwksFile} {
			for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
				tok := signJWT(t, jose.SigningKey{Algorithm: alg, Key: secret}, f.claims("x", "operator"),
					map[jose.HeaderKey]any{"kid": s.KeyID()})
				if p, err := f.auth.Authenticate(bearerRequest(tok)); err == nil || p != nil {
					t.Fatalf("%s token with the public key as secret accepted", alg)
				}
			}
		}
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	key := newRSAKey(t)
	ps := newSigner(t, key)
	rs := newSigner(t, key, josesigner.WithAlgorithm(jose.RS256))
	// The JWKS entry names PS256; an RS256 token with the same key is refused
	// both because RS256 is not allowed and because the key is bound to PS256.
	f := newFixture(t, nil, ps)
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, f.claims("x", "operator")))); err != nil {
		t.Fatalf("PS256: %v", err)
	}
	tok := signJWT(t, jose.SigningKey{Algorithm: jose.RS256, Key: rs}, f.claims("x", "operator"), nil)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("RS256 outside the allow-list: %v", err)
	}
	// An issuer that allows RS256 accepts it.
	f = newFixture(t, func(ic *IssuerConfig) { ic.Algorithms = []string{"RS256"} }, rs)
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, f.claims("x", "operator")))); err != nil {
		t.Fatalf("RS256 allowed: %v", err)
	}
	// ES384 token against an issuer with a P-256 key of the same kid: refused.
	p384 := newSigner(t, newECKey(t, elliptic.P384()))
	f = newFixture(t, nil, newSigner(t, newECKey(t, elliptic.P256())))
	tok = signJWT(t, jose.SigningKey{Algorithm: jose.ES384, Key: mustKID(t, p384, f.signer.KeyID())}, f.claims("x", "operator"), nil)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("ES384 token for a P-256 key: %v", err)
	}
}

func TestIssuerRoleRestriction(t *testing.T) {
	f := newFixture(t, func(ic *IssuerConfig) { ic.Roles = []policies.Role{policies.RoleAgency} })
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, f.claims("NTROM-1", "agency")))); err != nil {
		t.Fatal(err)
	}
	_, err := f.auth.Authenticate(bearerRequest(f.sign(t, f.claims("NTROM-1", "agency", "operator"))))
	if err == nil || !strings.Contains(err.Error(), "may not grant") {
		t.Fatalf("operator role from an agency-only issuer: %v", err)
	}
}

func TestNoCredentialsAndBadHeaders(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.auth.Authenticate(bearerRequest("")); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc.def.ghi", strings.Repeat("A", 100)} {
		r := bearerRequest("")
		r.Header.Set("Authorization", h)
		if _, err := f.auth.Authenticate(r); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%q: %v", h, err)
		}
	}
	r := bearerRequest(f.sign(t, f.claims("x", "operator")))
	r.Header.Add("Authorization", "Bearer x.y.z")
	if _, err := f.auth.Authenticate(r); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("two Authorization headers: %v", err)
	}
	long := "Bearer " + strings.Repeat("a", maxTokenBytes) + ".b.c"
	r = bearerRequest("")
	r.Header.Set("Authorization", long)
	if _, err := f.auth.Authenticate(r); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("huge token: %v", err)
	}
}

func TestMintTokenVerifies(t *testing.T) {
	s := newSigner(t, newECKey(t, elliptic.P256()))
	f := newFixture(t, func(ic *IssuerConfig) { *ic = DevIssuerConfig(ic.JWKSFile) }, s)
	tok, err := MintToken(s, MintClaims{Subject: "NTROM-1234567", Roles: []policies.Role{policies.RoleAgency}, TTL: 5 * time.Minute, Now: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.auth.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "NTROM-1234567" || p.Issuer != DevIssuer || rolesOf(p) != "agency" {
		t.Fatalf("principal %+v", p)
	}
	// Expires after its TTL (plus the default skew).
	f.clock.Advance(5*time.Minute + DefaultClockSkew + time.Second)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("after TTL: %v", err)
	}
	// Two tokens differ (random jti).
	a, _ := MintToken(s, MintClaims{Subject: "1", Roles: []policies.Role{policies.RoleCitizen}, Now: f.clock.Now()})
	b, _ := MintToken(s, MintClaims{Subject: "1", Roles: []policies.Role{policies.RoleCitizen}, Now: f.clock.Now()})
	if a == b {
		t.Fatal("two minted tokens are identical")
	}
	for _, bad := range []MintClaims{
		{Roles: []policies.Role{policies.RoleCitizen}},
		{Subject: "1"},
		{Subject: "1", Roles: []policies.Role{"root"}},
		{Subject: "1", Roles: []policies.Role{policies.RoleCitizen}, TTL: -time.Second},
		{Subject: "1", Roles: []policies.Role{policies.RoleCitizen}, TTL: MaxMintTTL + time.Second},
	} {
		if _, err := MintToken(s, bad); err == nil {
			t.Errorf("MintToken(%+v) succeeded", bad)
		}
	}
}

// TestPerIssuerAlgorithms checks that one issuer's allow-list does not admit
// an algorithm only another issuer allows.
func TestPerIssuerAlgorithms(t *testing.T) {
	key := newRSAKey(t)
	rs := newSigner(t, key, josesigner.WithAlgorithm(jose.RS256))
	f := newFixture(t, nil, rs) // testIssuer allows the defaults only
	other := newFixture(t, func(ic *IssuerConfig) { ic.Issuer = "https://other.example"; ic.Algorithms = []string{"RS256"} }, rs)
	a, err := New(Config{Issuers: []IssuerConfig{
		{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks},
		{Issuer: "https://other.example", Audience: testAudience, JWKSFile: other.jwks, Algorithms: []string{"RS256"}},
	}}, Options{Logger: quietLogger(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := f.claims("x", "operator")
	if _, err := a.Authenticate(bearerRequest(f.sign(t, c))); err == nil || !strings.Contains(err.Error(), "not allowed for this issuer") {
		t.Fatalf("RS256 token from an issuer that does not allow it: %v", err)
	}
	c["iss"] = "https://other.example"
	if _, err := a.Authenticate(bearerRequest(f.sign(t, c))); err != nil {
		t.Fatalf("RS256 token from the issuer that allows it: %v", err)
	}
}

func BenchmarkAuthenticateES256(b *testing.B) {
	f := newFixture(b, nil)
	tok := f.sign(b, f.claims("NTROM-1234567", "agency"))
	r := bearerRequest(tok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.auth.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
