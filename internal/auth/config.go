package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/policies"
)

// Defaults and limits of the configuration.
const (
	// DefaultClockSkew is the leeway applied to exp, nbf and iat.
	DefaultClockSkew = 60 * time.Second
	// MaxClockSkew is the largest leeway a configuration may ask for.
	MaxClockSkew = 5 * time.Minute
)

// defaultAlgorithms are the JWS algorithms accepted from an issuer whose
// configuration names none.
var defaultAlgorithms = []string{string(jose.ES256), string(jose.ES384), string(jose.PS256)}

// supportedAlgorithms are the asymmetric JWS algorithms an issuer may be
// allowed. Symmetric (HS*) algorithms and "none" are never accepted.
var supportedAlgorithms = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"EdDSA": true,
}

// Config is the serialisable authentication configuration.
type Config struct {
	// Issuers are the JWT issuers whose bearer tokens are trusted.
	Issuers []IssuerConfig `yaml:"issuers"`
	// MTLS configures client-certificate authentication.
	MTLS MTLSConfig `yaml:"mtls"`
}

// IssuerConfig describes one trusted JWT issuer.
type IssuerConfig struct {
	// Issuer is the exact value of the tokens' "iss" claim.
	Issuer string `yaml:"issuer"`
	// Audience must be one of the tokens' "aud" values.
	Audience string `yaml:"audience"`
	// JWKSFile is a JSON Web Key Set file with the issuer's public keys.
	JWKSFile string `yaml:"jwksFile,omitempty"`
	// JWKSURL is where the issuer publishes its JSON Web Key Set (https, or
	// http on a loopback address).
	JWKSURL string `yaml:"jwksURL,omitempty"`
	// Algorithms allow-lists the JWS algorithms; ES256, ES384 and PS256 when empty.
	Algorithms []string `yaml:"algorithms,omitempty"`
	// ClockSkew is the leeway for exp, nbf and iat; 60s when zero, at most 5m.
	ClockSkew time.Duration `yaml:"clockSkew,omitempty"`
	// Roles limits the roles this issuer may grant; every role when empty.
	Roles []policies.Role `yaml:"roles,omitempty"`
	// Development marks an issuer whose tokens anyone with the data folder
	// can mint (`thiqa token`): fine on a developer's machine, never in
	// production. `thiqa serve` warns while one is configured and refuses
	// to start with one when the configuration says production: true.
	Development bool `yaml:"development,omitempty"`
}

// IsDevelopment reports whether ic is a development issuer: marked so, or
// the issuer `thiqa init` configures for `thiqa token` (older data folders
// trust it without the mark).
func (ic IssuerConfig) IsDevelopment() bool { return ic.Development || ic.Issuer == DevIssuer }

// MTLSConfig configures client-certificate authentication.
type MTLSConfig struct {
	// ClientCAFiles are PEM files with the CA certificates that client
	// certificates must chain to. Without them mutual TLS is off.
	ClientCAFiles []string `yaml:"clientCAFiles,omitempty"`
	// Rules map verified client certificates to roles; the first rule that
	// matches decides. DefaultMTLSRules apply when empty.
	Rules []MTLSRule `yaml:"rules,omitempty"`
}

// MTLSRule grants Role to a client certificate when every condition that is
// set holds. At least one condition must be set.
//
// A rule granting the agency role also needs the subject's organizationIdentifier,
// and one granting the citizen role a serialNumber with a natural-person
// semantics identifier (EN 319 412-1, e.g. IDCOM-12345678): they become the
// principal's identity.
type MTLSRule struct {
	// Subject matches the whole subject DN as RFC 4514 text (as Go prints it,
	// e.g. "CN=Operator One,O=Thiqa,C=OM").
	Subject string `yaml:"subject,omitempty"`
	// Issuer matches the issuing CA's subject DN, RFC 4514 text.
	Issuer string `yaml:"issuer,omitempty"`
	// RequireOrganizationIdentifier matches when the subject carries an
	// organizationIdentifier (2.5.4.97).
	RequireOrganizationIdentifier bool `yaml:"requireOrganizationIdentifier,omitempty"`
	// OrganizationIdentifierPrefix matches organizationIdentifiers with this
	// prefix (e.g. "NTROM-").
	OrganizationIdentifierPrefix string `yaml:"organizationIdentifierPrefix,omitempty"`
	// SerialNumberPrefix matches subject serialNumber attributes with this
	// prefix (e.g. "IDC" or "IDCOM-").
	SerialNumberPrefix string `yaml:"serialNumberPrefix,omitempty"`
	// Role is the role granted.
	Role policies.Role `yaml:"role"`
}

// DefaultMTLSRules are used when a configuration names none: a certificate
// whose subject carries an organizationIdentifier is an agency's; one whose
// serialNumber is a national identity number (semantics identifier IDC) is a
// citizen's.
func DefaultMTLSRules() []MTLSRule {
	return []MTLSRule{
		{RequireOrganizationIdentifier: true, Role: policies.RoleAgency},
		{SerialNumberPrefix: "IDC", Role: policies.RoleCitizen},
	}
}

// Validate reports the first problem in c.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, ic := range c.Issuers {
		if err := ic.validate(); err != nil {
			return fmt.Errorf("auth: issuers[%d]: %w", i, err)
		}
		if seen[ic.Issuer] {
			return fmt.Errorf("auth: issuers[%d]: issuer %q configured twice", i, ic.Issuer)
		}
		seen[ic.Issuer] = true
	}
	for i, f := range c.MTLS.ClientCAFiles {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("auth: mtls.clientCAFiles[%d]: empty path", i)
		}
	}
	for i, r := range c.MTLS.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("auth: mtls.rules[%d]: %w", i, err)
		}
	}
	return nil
}

func (ic IssuerConfig) validate() error {
	if ic.Issuer == "" {
		return errors.New("issuer is required")
	}
	if ic.Audience == "" {
		return errors.New("audience is required")
	}
	switch {
	case ic.JWKSFile == "" && ic.JWKSURL == "":
		return errors.New("one of jwksFile and jwksURL is required")
	case ic.JWKSFile != "" && ic.JWKSURL != "":
		return errors.New("jwksFile and jwksURL are mutually exclusive")
	case ic.JWKSURL != "":
		if err := checkJWKSURL(ic.JWKSURL); err != nil {
			return err
		}
	}
	for _, a := range ic.Algorithms {
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			return fmt.Errorf("algorithm %q is never allowed (only asymmetric signatures)", a)
		}
		if !supportedAlgorithms[a] {
			return fmt.Errorf("unsupported algorithm %q", a)
		}
	}
	if ic.ClockSkew < 0 || ic.ClockSkew > MaxClockSkew {
		return fmt.Errorf("clockSkew %s out of range [0, %s]", ic.ClockSkew, MaxClockSkew)
	}
	for _, r := range ic.Roles {
		if _, err := policies.ParseRole(string(r)); err != nil {
			return err
		}
	}
	return nil
}

func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("jwksURL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("jwksURL %q: plain http only on a loopback address", raw)
		}
	default:
		return fmt.Errorf("jwksURL %q: scheme must be https", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("jwksURL %q: no host", raw)
	}
	return nil
}

func (r MTLSRule) validate() error {
	if _, err := policies.ParseRole(string(r.Role)); err != nil {
		return err
	}
	if r.Subject == "" && r.Issuer == "" && !r.RequireOrganizationIdentifier &&
		r.OrganizationIdentifierPrefix == "" && r.SerialNumberPrefix == "" {
		return errors.New("a rule needs at least one condition (subject, issuer, requireOrganizationIdentifier, organizationIdentifierPrefix, serialNumberPrefix)")
	}
	return nil
}

// algorithms returns the issuer's allow-list with the default applied.
func (ic IssuerConfig) algorithms() []jose.SignatureAlgorithm {
	names := ic.Algorithms
	if len(names) == 0 {
		names = defaultAlgorithms
	}
	out := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		out[i] = jose.SignatureAlgorithm(n)
	}
	return out
}

// Development issuer defaults, shared by `thiqa init` (which writes the
// issuer's JWKS), `thiqa token` (which mints with its key) and the default
// configuration (which trusts it).
const (
	// DevIssuer is the "iss" of development tokens.
	DevIssuer = "urn:thiqa:dev-issuer"
	// DevAudience is the "aud" of development tokens.
	DevAudience = "thiqa"
)

// DevIssuerConfig trusts the development issuer whose public keys are in jwksFile.
func DevIssuerConfig(jwksFile string) IssuerConfig {
	return IssuerConfig{Issuer: DevIssuer, Audience: DevAudience, JWKSFile: jwksFile, Development: true}
}
