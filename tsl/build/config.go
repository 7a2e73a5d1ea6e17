package build

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
	return c
}

// ListOptions are the Options of this deployment's own list but its
// version, sequence number and signer: d's services (DeploymentServices),
// the territory the section names or else the root CA's country, the
// operator as scheme operator and provider, the list published at
// baseURL/tsl.xml, issued at issued and valid for validFor.
func (c Config) ListOptions(d Deployment, baseURL string, issued time.Time, validFor time.Duration) Options {
	services, territory := DeploymentServices(d)
	if c.Territory != "" {
		territory = c.Territory
	}
	return Options{Territory: territory, Operator: c.Operator, Provider: c.Operator, InformationURI: baseURL,
		Street: "PLACEHOLDER", Locality: "PLACEHOLDER", Services: services, IssueDate: issued, NextUpdate: issued.Add(validFor),
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
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
