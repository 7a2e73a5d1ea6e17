package ca

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// Config is the serialisable configuration of the certificate authority
// (thiqa.yaml's ca section): the root and issuing CA keys on the token
// (RFC 7512 URIs), their certificates' subjects and lifetimes, and the
// deployment values of the default certificate profiles. An empty section
// (no root key) means the data folder runs no CA.
type Config struct {
	// CertDir is the folder (relative to the data folder) where `thiqa init`
	// writes the CA certificates as {root,citizen,organisation,tsa}.pem.
	CertDir string `yaml:"certDir"`
	// Root is the self-signed root CA.
	Root KeyConfig `yaml:"root"`
	// Issuers are the issuing CAs, signed by the root.
	Issuers []KeyConfig `yaml:"issuers"`
	// Profiles carries the CA's own policy OID and the PKI disclosure
	// statement URL of the default profiles. Empty values are PLACEHOLDERS.
	Profiles policies.DefaultsConfig `yaml:"profiles"`
	// SubjectKeyType is the type of subject keys generated on the token for
	// remote signing ("keyInHSM": true): ec-p256 (default), ec-p384, rsa-2048, rsa-3072 or rsa-4096.
	SubjectKeyType string `yaml:"subjectKeyType"`
	// Renewal tunes POST /api/v1/certificates/{serial}/renew.
	Renewal RenewalConfig `yaml:"renewal"`
}

// RenewalConfig tunes renewal and re-key (thiqa.yaml's ca.renewal).
type RenewalConfig struct {
	// KeepSuperseded leaves a replaced certificate valid until it expires;
	// by default it is revoked (reason superseded) once its successor is
	// issued.
	KeepSuperseded bool `yaml:"keepSuperseded"`
}

// KeyConfig describes one CA of the ca section: its key on the token and
// its certificate.
type KeyConfig struct {
	// Name is the CA's short name: root, citizen, organisation or tsa. It
	// names its URLs (/certs/{name}.crt) and its certificate file.
	Name string `yaml:"name"`
	// Key is the pkcs11: URI of its key (pkcs11:token=thiqa;object=root-ca).
	Key string `yaml:"key"`
	// KeyType is ec-p384 (default), ec-p256, rsa-3072 or rsa-4096.
	KeyType string `yaml:"keyType"`
	// CommonName, Organization, OrganizationIdentifier and Country form the certificate's subject.
	CommonName             string `yaml:"commonName"`
	Organization           string `yaml:"organization"`
	OrganizationIdentifier string `yaml:"organizationIdentifier"`
	Country                string `yaml:"country"`
	// Validity is the certificate's lifetime: "7300d" or a Go duration.
	Validity string `yaml:"validity"`
	// Offline, for the root only, says its key is not on this token: it is
	// kept offline (the key ceremony, docs/ceremony.md) or the root is an
	// existing national root. Its certificate comes from
	// `thiqa init --root-cert`, its CRL from `thiqa ca crl import`; Key,
	// KeyType, the subject and Validity are then left empty.
	Offline bool `yaml:"offline,omitempty"`
}

// caKeyTypes are the key types a CA key may have.
var caKeyTypes = []string{"ec-p256", "ec-p384", "rsa-3072", "rsa-4096"}

// subjectKeyTypes are the key types of subject keys generated on the token.
var subjectKeyTypes = []string{"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"}

// DefaultConfig is the CA of a local setup on token "thiqa": a root and
// the issuing CAs citizen, organisation and tsa, P-384 keys. Subject names
// and policy OIDs are PLACEHOLDERS to be replaced before production.
func DefaultConfig() Config {
	ca := func(name, cn, validity string) KeyConfig {
		return KeyConfig{
			Name: name, Key: "pkcs11:token=thiqa;object=" + name + "-ca", KeyType: "ec-p384",
			CommonName: cn, Organization: "Thiqa Trust Services (PLACEHOLDER)", OrganizationIdentifier: "NTROM-0000000", Country: "OM",
			Validity: validity,
		}
	}
	return Config{
		CertDir: "ca",
		Root:    ca("root", "Thiqa Root CA (PLACEHOLDER)", "7300d"),
		Issuers: []KeyConfig{
			ca(policies.IssuerCitizen, "Thiqa Citizen CA (PLACEHOLDER)", "3650d"),
			ca(policies.IssuerOrganisation, "Thiqa Organisation CA (PLACEHOLDER)", "3650d"),
			ca(policies.IssuerTSA, "Thiqa TSA CA (PLACEHOLDER)", "3650d"),
		},
		SubjectKeyType: "ec-p256",
	}
}

// Enabled reports whether the data folder runs a CA.
func (c Config) Enabled() bool { return c.Root.Key != "" || c.Root.Offline }

// IsIssuer reports whether name is an issuing CA of a running CA.
func (c Config) IsIssuer(name string) bool {
	return c.Enabled() && slices.ContainsFunc(c.Issuers, func(k KeyConfig) bool { return k.Name == name })
}

// SubjectKeyTypeOrDefault returns the type of subject keys generated on
// the token: SubjectKeyType, ec-p256 when it is empty.
func (c Config) SubjectKeyTypeOrDefault() string {
	if c.SubjectKeyType == "" {
		return "ec-p256"
	}
	return c.SubjectKeyType
}

// Country is the deployment's country: the subject C of its citizen CA
// (policies.IssuerCitizen), else of its root; "" without a CA or when
// neither names one (an offline root leaves it empty). A civil number
// counts for this deployment only when it is of this country
// (auth.Options.Country).
func (c Config) Country() string {
	if !c.Enabled() {
		return ""
	}
	for _, k := range c.Issuers {
		if k.Name == policies.IssuerCitizen && k.Country != "" {
			return k.Country
		}
	}
	if c.Root.Offline {
		// Its subject is its certificate's; the section's is not
		// validated and may be a leftover.
		return ""
	}
	return c.Root.Country
}

// IssuerNames returns the names of the issuing CAs in the section's order.
func (c Config) IssuerNames() []string {
	names := make([]string, 0, len(c.Issuers))
	for _, is := range c.Issuers {
		names = append(names, is.Name)
	}
	return names
}

// Validate checks the CA section; an empty section is valid (no CA).
func (c Config) Validate() error {
	if !c.Enabled() {
		if len(c.Issuers) > 0 {
			return errors.New("ca.root.key: issuers are configured without a root key")
		}
		return nil
	}
	var errs []string
	if c.CertDir == "" {
		errs = append(errs, "ca.certDir: must name a folder")
	}
	names := map[string]bool{}
	check := func(key string, k KeyConfig) {
		if k.Name == "" || strings.ContainsAny(k.Name, "/.- ") || names[k.Name] {
			errs = append(errs, fmt.Sprintf("%s.name: %q must be unique, non-empty, without '/', '.', '-' or spaces", key, k.Name))
		}
		names[k.Name] = true
		if !strings.HasPrefix(k.Key, "pkcs11:") {
			errs = append(errs, fmt.Sprintf("%s.key: want a pkcs11: URI, got %q", key, k.Key))
		}
		if k.KeyType != "" && !slices.Contains(caKeyTypes, k.KeyType) {
			errs = append(errs, fmt.Sprintf("%s.keyType: want one of %s, got %q", key, strings.Join(caKeyTypes, ", "), k.KeyType))
		}
		if k.CommonName == "" || !policies.IsCountryCode(k.Country) {
			errs = append(errs, fmt.Sprintf("%s: commonName and an ISO 3166 country are required", key))
		}
		if _, err := policies.ParseValidity(k.Validity); err != nil {
			errs = append(errs, fmt.Sprintf("%s.validity: %v", key, err))
		}
	}
	if c.Root.Offline {
		if c.Root.Key != "" {
			errs = append(errs, "ca.root.key: must be empty when the root is offline (its key is not on this token)")
		}
		names[c.Root.Name] = true
	} else {
		check("ca.root", c.Root)
	}
	if c.Root.Name != "root" {
		errs = append(errs, fmt.Sprintf("ca.root.name: must be \"root\", got %q", c.Root.Name))
	}
	if len(c.Issuers) == 0 {
		errs = append(errs, "ca.issuers: at least one issuing CA is required")
	}
	for i, is := range c.Issuers {
		check(fmt.Sprintf("ca.issuers[%d]", i), is)
		if strings.Contains(is.Name, "_") || is.Offline {
			errs = append(errs, fmt.Sprintf("ca.issuers[%d]: an issuing CA is never offline, and '_' in its name is kept for its generations (citizen_2)", i))
		}
	}
	// The default profiles carry the section's policy OID, PDS and
	// crypto-periods: a bad value there must stop the check, not the
	// first opening of the CA.
	if _, err := policies.DefaultProfiles(c.Profiles); err != nil {
		errs = append(errs, fmt.Sprintf("ca.profiles: %v", err))
	}
	if c.SubjectKeyType != "" && !slices.Contains(subjectKeyTypes, c.SubjectKeyType) {
		errs = append(errs, fmt.Sprintf("ca.subjectKeyType: want one of %s, got %q", strings.Join(subjectKeyTypes, ", "), c.SubjectKeyType))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// KeyTypeOrDefault returns the CA's key type, ec-p384 when unset.
func (k KeyConfig) KeyTypeOrDefault() string {
	if k.KeyType == "" {
		return "ec-p384"
	}
	return k.KeyType
}
