package build

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/thiqa/thiqa/verify/tsl"
)

// Defaults of the tsl section.
const (
	// DefaultFile is this deployment's own trusted list (served at
	// GET /tsl.xml), relative to the data folder.
	DefaultFile = "tsl/tsl.xml"
	// DefaultSignerCertificate is the list signer's certificate (PEM).
	DefaultSignerCertificate = "tsl/signer.pem"
	// signerObject is the list signer key's label on the token.
	signerObject = "tsl-signer"
)

// Config is the serialisable configuration of this deployment's own ETSI
// TS 119 612 trusted list (thiqa.yaml's tsl section): `thiqa tsl build`
// writes it, GET /tsl.xml serves it. Every field may be left out:
// WithDefaults fills it in.
type Config struct {
	// SignerKey is the pkcs11: URI of the list signer's key (RSA 3072,
	// made by `thiqa init`); default object tsl-signer on the token.
	SignerKey string `yaml:"signerKey,omitempty"`
	// SignerCertificate is the signer's certificate (PEM, relative to the
	// data folder; default tsl/signer.pem). Relying parties configure it
	// as the list's signer.
	SignerCertificate string `yaml:"signerCertificate,omitempty"`
	// File is the list (default tsl/tsl.xml).
	File string `yaml:"file,omitempty"`
	// Operator names the scheme operator and the trust service provider
	// (default "Thiqa").
	Operator string `yaml:"operator,omitempty"`
	// Territory is the scheme territory (default: the root CA's country).
	Territory string `yaml:"territory,omitempty"`
	// Address is the postal and e-mail address of the scheme operator and
	// the trust service provider (default: street and locality
	// PLACEHOLDER, the territory as country, no e-mail).
	Address Address `yaml:"address,omitempty"`
}

// Placeholder is the street and the locality of the list's postal address
// when the section names none.
const Placeholder = "PLACEHOLDER"

// Bounds of the address's values, in characters.
const (
	maxAddressLine = 256
	maxPostalCode  = 32
	maxEmail       = 254 // RFC 5321's longest path
)

// Address is the postal address (and e-mail address) TS 119 612 wants for
// the scheme operator and the trust service provider (SchemeOperatorAddress,
// TSPAddress).
type Address struct {
	// Street is the street address (StreetAddress).
	Street string `yaml:"street,omitempty"`
	// Locality is the town or city.
	Locality string `yaml:"locality,omitempty"`
	// StateOrProvince is written only when set.
	StateOrProvince string `yaml:"stateOrProvince,omitempty"`
	// PostalCode is written only when set.
	PostalCode string `yaml:"postalCode,omitempty"`
	// Country is the address's ISO 3166-1 alpha-2 code (CountryName;
	// default: the list's territory).
	Country string `yaml:"country,omitempty"`
	// Email, when set, is added to the electronic address as a mailto:
	// URI, after the web address (publicBaseURL).
	Email string `yaml:"email,omitempty"`
}

// withDefaults fills the street and the locality with Placeholder.
func (a Address) withDefaults() Address {
	if a.Street == "" {
		a.Street = Placeholder
	}
	if a.Locality == "" {
		a.Locality = Placeholder
	}
	return a
}

// IsPlaceholder reports whether the street or the locality (defaults
// filled in) is still Placeholder.
func (a Address) IsPlaceholder() bool {
	a = a.withDefaults()
	return strings.Contains(a.Street, Placeholder) || strings.Contains(a.Locality, Placeholder)
}

// problems lists what is wrong with the address, each under its key.
func (a Address) problems() []string {
	var errs []string
	line := func(key, v string, limit int) {
		switch {
		case v == "":
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Sprintf("tsl.address.%s: blank (leave it out for the default)", key))
		case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
			errs = append(errs, fmt.Sprintf("tsl.address.%s: holds a control character or invalid UTF-8", key))
		case utf8.RuneCountInString(v) > limit:
			errs = append(errs, fmt.Sprintf("tsl.address.%s: longer than %d characters", key, limit))
		}
	}
	line("street", a.Street, maxAddressLine)
	line("locality", a.Locality, maxAddressLine)
	line("stateOrProvince", a.StateOrProvince, maxAddressLine)
	line("postalCode", a.PostalCode, maxPostalCode)
	if a.Country != "" && !tsl.IsTerritory(a.Country) {
		errs = append(errs, fmt.Sprintf("tsl.address.country: want two capital letters (ISO 3166-1), got %q", a.Country))
	}
	if a.Email != "" {
		m, err := mail.ParseAddress(a.Email)
		switch {
		case len(a.Email) > maxEmail:
			errs = append(errs, fmt.Sprintf("tsl.address.email: longer than %d characters", maxEmail))
		case err != nil || m.Name != "" || m.Address != a.Email || strings.ContainsFunc(a.Email, unicode.IsSpace):
			errs = append(errs, fmt.Sprintf("tsl.address.email: want a bare e-mail address (trust@example.om), got %q", a.Email))
		}
	}
	return errs
}

// WithDefaults returns c with every empty field set to its default; token
// is the configured token's label.
func (c Config) WithDefaults(token string) Config {
	if c.SignerKey == "" {
		c.SignerKey = fmt.Sprintf("pkcs11:token=%s;object=%s", token, signerObject)
	}
	if c.SignerCertificate == "" {
		c.SignerCertificate = DefaultSignerCertificate
	}
	if c.File == "" {
		c.File = DefaultFile
	}
	if c.Operator == "" {
		c.Operator = "Thiqa"
	}
	c.Address = c.Address.withDefaults()
	return c
}

// ListOptions are the Options of this deployment's own list but its
// version, sequence number and signer: d's services (DeploymentServices),
// the territory the section names or else the root CA's country, the
// operator as scheme operator and provider at the section's address
// (street and locality Placeholder when it names none), the list published
// at baseURL/tsl.xml, issued at issued and valid for validFor.
func (c Config) ListOptions(d Deployment, baseURL string, issued time.Time, validFor time.Duration) Options {
	services, territory := DeploymentServices(d)
	if c.Territory != "" {
		territory = c.Territory
	}
	a := c.Address.withDefaults()
	return Options{Territory: territory, Operator: c.Operator, Provider: c.Operator, InformationURI: baseURL,
		Street: a.Street, Locality: a.Locality, StateOrProvince: a.StateOrProvince, PostalCode: a.PostalCode,
		Country: a.Country, Email: a.Email, Services: services, IssueDate: issued, NextUpdate: issued.Add(validFor),
		DistributionPoint: strings.TrimSuffix(baseURL, "/") + "/tsl.xml"}
}

// Validate checks the tsl section.
func (c Config) Validate() error {
	var errs []string
	if c.SignerKey != "" && !strings.HasPrefix(c.SignerKey, "pkcs11:") {
		errs = append(errs, fmt.Sprintf("tsl.signerKey: want a pkcs11: URI, got %q", c.SignerKey))
	}
	if c.Territory != "" && !tsl.IsTerritory(c.Territory) {
		errs = append(errs, fmt.Sprintf("tsl.territory: want two capital letters (ISO 3166-1), got %q", c.Territory))
	}
	errs = append(errs, c.Address.problems()...)
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
