package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/policies"
)

// CeremonyFileName is the configuration file's name inside a ceremony folder.
const CeremonyFileName = "ceremony.yaml"

// Ceremony is the configuration of a key-ceremony folder (ceremony.yaml):
// the offline token that holds the root key, and what the root's
// certificates and CRLs say about the deployment. Relative paths are
// relative to the ceremony folder.
type Ceremony struct {
	// HSM names the offline token: by default a SoftHSM2 token inside the
	// ceremony folder (tests, demonstrations); in production an offline
	// HSM's PKCS#11 module, without softhsm.
	HSM hsm.TokenConfig `yaml:"hsm"`
	// RootKey is the pkcs11: URI of the root key on that token.
	RootKey string `yaml:"rootKey"`
	// PublicBaseURL is the deployment's public base URL (thiqa.yaml's
	// publicBaseURL): every issuing CA certificate the root signs names the
	// root's certificate (BASE/certs/root.crt) and CRL (BASE/crl/root.crl)
	// under it (the root CRL itself names no distribution point). http://,
	// as CRLs are fetched over plain HTTP. `thiqa ca
	// import` refuses a certificate naming another base URL than the
	// deployment's.
	PublicBaseURL string `yaml:"publicBaseURL"`
	// Profiles carries the CA policy OID and PDS URL of the deployment's
	// certificate profiles (thiqa.yaml's ca.profiles): an issuing CA
	// certificate lists the policies of the profiles the CA issues.
	Profiles policies.DefaultsConfig `yaml:"profiles"`

	dir string
}

// DefaultCeremony returns the configuration of a ceremony folder dir with
// its own SoftHSM2 token "thiqa-root" inside it.
func DefaultCeremony(dir string) *Ceremony {
	return &Ceremony{
		HSM: hsm.TokenConfig{
			Module:     hsm.DefaultSoftHSMModule,
			TokenLabel: "thiqa-root",
			PINFile:    "secrets/user.pin",
			SoftHSM:    &hsm.SoftHSMConfig{Conf: "softhsm2.conf", TokenDir: "tokens", SOPINFile: "secrets/so.pin"},
		},
		RootKey:       "pkcs11:token=thiqa-root;object=root-ca",
		PublicBaseURL: "http://127.0.0.1:8080",
		dir:           dir,
	}
}

// CeremonyPath returns the configuration file's path in dir.
func CeremonyPath(dir string) string { return filepath.Join(dir, CeremonyFileName) }

// LoadCeremony reads and validates dir/ceremony.yaml.
func LoadCeremony(dir string) (*Ceremony, error) {
	raw, err := os.ReadFile(CeremonyPath(dir))
	if err != nil {
		return nil, fmt.Errorf("reading the ceremony configuration: %w", err)
	}
	c, err := ParseCeremony(raw, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CeremonyPath(dir), err)
	}
	return c, nil
}

// ParseCeremony decodes a ceremony configuration strictly and validates it.
func ParseCeremony(raw []byte, dir string) (*Ceremony, error) {
	c := &Ceremony{}
	if err := decodeStrict(raw, c); err != nil {
		return nil, err
	}
	c.dir = dir
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every field and names the keys that are wrong.
func (c *Ceremony) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	if err := c.HSM.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if !strings.HasPrefix(c.RootKey, "pkcs11:") {
		bad("rootKey", "want a pkcs11: URI, got %q", c.RootKey)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		strings.HasSuffix(c.PublicBaseURL, "/") {
		bad("publicBaseURL", "want an absolute http:// URL without a trailing slash (CRLs are fetched over plain HTTP), got %q", c.PublicBaseURL)
	}
	if _, err := policies.DefaultProfiles(c.Profiles); err != nil {
		bad("profiles", "%v", err)
	}
	if len(errs) > 0 {
		return errors.New("invalid ceremony configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// Marshal encodes the configuration as YAML.
func (c *Ceremony) Marshal() ([]byte, error) { return marshalYAML(c, "the ceremony configuration") }

// Dir is the ceremony folder.
func (c *Ceremony) Dir() string { return c.dir }

// Resolve returns p made absolute against the ceremony folder.
func (c *Ceremony) Resolve(p string) string { return resolveIn(c.dir, p) }

// PIN returns the offline token's user PIN.
func (c *Ceremony) PIN() (string, error) {
	pin, err := ReadSecret(c.Resolve(c.HSM.PINFile), c.HSM.PINEnv)
	if err != nil {
		return "", fmt.Errorf("offline token PIN: %w", err)
	}
	return pin, nil
}
