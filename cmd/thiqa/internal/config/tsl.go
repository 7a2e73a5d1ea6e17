package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of trusted lists.
const (
	// DefaultTSLFile is this deployment's own trusted list (served at
	// GET /tsl.xml), relative to the data folder.
	DefaultTSLFile = "tsl/tsl.xml"
	// DefaultTSLSignerCertificate is the list signer's certificate (PEM).
	DefaultTSLSignerCertificate = "tsl/signer.pem"
	// DefaultTrustedListCache keeps fetched trusted lists.
	DefaultTrustedListCache = "tsl/cache"
	// DefaultTrustedListRefresh is how often `thiqa serve` reloads them.
	DefaultTrustedListRefresh = 6 * time.Hour
	tslSignerObject           = "tsl-signer"
)

// TSLConfig configures this deployment's own ETSI TS 119 612 trusted list:
// `thiqa tsl build` writes it, GET /tsl.xml serves it. Every field may be
// left out: WithDefaults fills it in.
type TSLConfig struct {
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
func (c TSLConfig) WithDefaults(token string) TSLConfig {
	if c.SignerKey == "" {
		c.SignerKey = fmt.Sprintf("pkcs11:token=%s;object=%s", token, tslSignerObject)
	}
	if c.SignerCertificate == "" {
		c.SignerCertificate = DefaultTSLSignerCertificate
	}
	if c.File == "" {
		c.File = DefaultTSLFile
	}
	if c.Operator == "" {
		c.Operator = "Thiqa"
	}
	return c
}

// Validate checks the tsl section.
func (c TSLConfig) Validate() []string {
	var errs []string
	if c.SignerKey != "" && !strings.HasPrefix(c.SignerKey, "pkcs11:") {
		errs = append(errs, fmt.Sprintf("tsl.signerKey: want a pkcs11: URI, got %q", c.SignerKey))
	}
	if c.Territory != "" && !twoLetters(c.Territory) {
		errs = append(errs, fmt.Sprintf("tsl.territory: want two capital letters (ISO 3166-1), got %q", c.Territory))
	}
	return errs
}

// ResolvedTSL returns the tsl section with defaults and absolute file names.
func (c *Config) ResolvedTSL() TSLConfig {
	t := c.TSL.WithDefaults(c.HSM.TokenLabel)
	t.SignerCertificate = c.Resolve(t.SignerCertificate)
	t.File = c.Resolve(t.File)
	return t
}

// TrustedListConfig is one trusted list the verifier uses: a file or a URL
// (one of them), the PEM files of the certificates allowed to sign it, and
// for a list of lists the territories to follow (all when empty).
type TrustedListConfig struct {
	File        string   `yaml:"file,omitempty"`
	URL         string   `yaml:"url,omitempty"`
	Signers     []string `yaml:"signers"`
	Territories []string `yaml:"territories,omitempty"`
}

// Location is the list's file or URL.
func (t TrustedListConfig) Location() string {
	if t.URL != "" {
		return t.URL
	}
	return t.File
}

func twoLetters(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// validateTrustedLists checks verify.trustedLists and its settings.
func (c VerifyConfig) validateTrustedLists() []string {
	var errs []string
	for i, t := range c.TrustedLists {
		key := fmt.Sprintf("verify.trustedLists[%d]", i)
		switch {
		case (t.File == "") == (t.URL == ""):
			errs = append(errs, key+": give exactly one of file and url")
		case t.URL != "":
			if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Sprintf("%s.url: want an http(s) URL, got %q", key, t.URL))
			}
		}
		if len(t.Signers) == 0 {
			errs = append(errs, key+".signers: name at least one PEM file of the list's signer certificate")
		}
		for j, s := range t.Signers {
			if strings.TrimSpace(s) == "" {
				errs = append(errs, fmt.Sprintf("%s.signers[%d]: empty file name", key, j))
			}
		}
		for _, ter := range t.Territories {
			if !twoLetters(ter) && ter != "EU" {
				errs = append(errs, fmt.Sprintf("%s.territories: %q is not a territory code", key, ter))
			}
		}
	}
	if c.TrustedListRefresh < 0 || (c.TrustedListRefresh > 0 && c.TrustedListRefresh < time.Minute) || c.TrustedListRefresh > 7*24*time.Hour {
		errs = append(errs, fmt.Sprintf("verify.trustedListRefresh: want 1m to 168h, got %s", c.TrustedListRefresh))
	}
	return errs
}
