// Package authtest gives the tests of the services a real
// auth.Authenticator, trusting a throwaway development issuer whose bearer
// tokens the test mints, so that a service's routes are tested behind the
// same guard `thiqa serve` puts them behind.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/policies"
)

// Issuer is a development token issuer and the Authenticator that trusts it.
type Issuer struct {
	// Authn authenticates and authorises requests: pass Authn.Require as a
	// service's guard.
	Authn  *auth.Authenticator
	signer *josesigner.Signer
}

// New returns an issuer whose refusals (Require's) are recorded in audit
// (nil: none).
func New(t testing.TB, audit auth.Auditor) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js, err := josesigner.New(key, "")
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "dev-jwks.json")
	if err := auth.WriteJWKS(jwks, *js.Public()); err != nil {
		t.Fatal(err)
	}
	opts := auth.Options{Logger: slog.New(slog.DiscardHandler)}
	if audit != nil {
		opts.Audit = audit
	}
	a, err := auth.New(auth.Config{Issuers: []auth.IssuerConfig{auth.DevIssuerConfig(jwks)}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Authn: a, signer: js}
}

// Token mints a bearer token for subject holding role, as `thiqa token`
// does.
func (is *Issuer) Token(t testing.TB, subject string, role policies.Role) string {
	t.Helper()
	tok, err := auth.MintToken(is.signer, auth.MintClaims{Subject: subject, Roles: []policies.Role{role}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
