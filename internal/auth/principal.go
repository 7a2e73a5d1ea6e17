package auth

import (
	"context"
	"crypto/x509"
	"slices"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// Authentication methods recorded in Principal.Method.
const (
	MethodJWT  = "jwt"
	MethodMTLS = "mtls"
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject identifies the caller: an agency's organizationIdentifier
	// (e.g. NTROM-1234567), a citizen's civil number, otherwise the JWT
	// subject or the certificate's subject DN.
	Subject string
	// Roles are the roles the caller holds.
	Roles []policies.Role
	// Method is how the caller authenticated: MethodJWT or MethodMTLS.
	Method string
	// Issuer is the token's issuer or the certificate issuer's DN.
	Issuer string
	// OrganizationIdentifier is set for agencies.
	OrganizationIdentifier string
	// CivilNumber is set for citizens: of this deployment's country only
	// (a client certificate with a national identity number of another
	// country gives a principal without a civil number and without a role).
	CivilNumber string
	// CivilCountry is the country (ISO 3166 alpha-2) CivilNumber belongs
	// to: the deployment's (Options.Country). Empty when it is not known:
	// then OwnsCertificate matches the number whatever the certificate's
	// country.
	CivilCountry string
	// Certificate is the verified client certificate (mutual TLS only).
	Certificate *x509.Certificate
	// Expires is when the credential the caller authenticated with stops
	// being valid: the token's exp or the certificate's NotAfter. Whatever
	// outlives the request (a portal session) ends then at the latest.
	Expires time.Time
	// Grant is what a delegated access token authorises (DelegatedIssuer);
	// nil for every other caller.
	Grant *Grant
	// chain is the verified chain of a client certificate, leaf first
	// (Recheck asks CheckCertificate about it again).
	chain []*x509.Certificate
	// actions bounds what a delegated access token may do.
	actions []policies.Action
	// otherCountry marks a client certificate whose national identity
	// number is of another country than the deployment's: it matched a
	// citizen rule but holds no role.
	otherCountry bool
}

// Caller names an authenticated caller in audit records: how they
// authenticated, who they are and the roles they hold.
type Caller struct {
	Method  string          `json:"method"`
	Subject string          `json:"subject"`
	Roles   []policies.Role `json:"roles"`
	// Certificate is the client certificate (mutual TLS only).
	Certificate *CertificateRef `json:"certificate,omitempty"`
	// Client is the OAuth client a delegated access token was issued to,
	// and Scope its scope (delegated tokens only).
	Client string `json:"client,omitempty"`
	Scope  string `json:"scope,omitempty"`
}

// Caller describes p for an audit record; nil for nil.
func (p *Principal) Caller() *Caller {
	if p == nil {
		return nil
	}
	c := &Caller{Method: p.Method, Subject: p.Subject, Roles: p.Roles, Certificate: RefOf(p.Certificate)}
	if p.Grant != nil {
		c.Client, c.Scope = p.Grant.ClientID, p.Grant.Scope
	}
	return c
}

// CallerOf describes the principal Require stored in ctx, nil when there
// is none: what a service's own refusal records name.
func CallerOf(ctx context.Context) *Caller {
	p, _ := FromContext(ctx)
	return p.Caller()
}

// ActingCaller is CallerOf(ctx) when that caller is the one actor names
// (its subject is actor), nil otherwise: what the record of a change made
// by actor names as its caller. A service acting under its own name
// (thiqa-serve's sweeps, a CMP follow-up) inside a request's context is
// not that request's caller.
func ActingCaller(ctx context.Context, actor string) *Caller {
	c := CallerOf(ctx)
	if c == nil || actor == "" || c.Subject != actor {
		return nil
	}
	return c
}

// Has reports whether p holds role.
func (p *Principal) Has(role policies.Role) bool {
	return p != nil && slices.Contains(p.Roles, role)
}

// Allowed reports whether p may perform action according to policies.Allowed.
func (p *Principal) Allowed(action policies.Action) bool {
	return p != nil && policies.Allowed(action, p.Roles)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p (used by Require, and by tests
// that call handlers directly).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal Require stored in ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
