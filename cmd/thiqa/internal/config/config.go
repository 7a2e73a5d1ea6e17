// Package config reads Thiqa's configuration: one YAML file (thiqa.yaml) in
// the data folder, decoded strictly (unknown keys are errors), completed with
// defaults for a local setup and validated before anything is built from it.
// Relative paths in the file are relative to the data folder.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/tsl/build"
	"github.com/thiqa/thiqa/verify"
)

// FileName is the configuration file's name inside the data folder.
const FileName = "thiqa.yaml"

// Config is the whole of thiqa.yaml. Each section that configures one
// service is that service's own serialisable Config type, with its
// defaults and its validation; this package adds the paths, the defaults
// that depend on other sections and the checks across sections.
type Config struct {
	// Production says this is a production deployment: `thiqa serve`
	// refuses to start while a development token issuer is trusted.
	Production bool `yaml:"production,omitempty"`
	// Listen is the HTTP listen address of `thiqa serve`.
	Listen string `yaml:"listen"`
	// PublicBaseURL is the URL relying parties reach this service at; it goes
	// into certificates (AIA, CRL distribution points).
	PublicBaseURL string `yaml:"publicBaseURL"`
	// Log configures structured logging.
	Log LogConfig `yaml:"log"`
	// HSM names the PKCS#11 token that holds every key.
	HSM hsm.TokenConfig `yaml:"hsm"`
	// Store names the database.
	Store store.DatabaseConfig `yaml:"store"`
	// Auth configures who may call the protected APIs: JWT issuers and
	// mutual-TLS client CAs. Relative file names are relative to the data folder.
	Auth auth.Config `yaml:"auth"`
	// Keys names the service keys on the token by RFC 7512 URI.
	Keys KeysConfig `yaml:"keys"`
	// TLS, when set, serves HTTPS; mutual-TLS clients need it.
	TLS *TLSConfig `yaml:"tls,omitempty"`
	// CA configures the certificate authority (root and issuing CAs).
	CA ca.Config `yaml:"ca"`
	// TSA configures the time-stamping authority (RFC 3161).
	TSA timestamp.ServiceConfig `yaml:"tsa"`
	// Revocation configures CRLs, the OCSP responder and revocation polling.
	Revocation revocation.Config `yaml:"revocation"`
	// Identity configures the digital-ID service (OpenID Connect provider).
	Identity identity.ProviderConfig `yaml:"identity"`
	// Signing configures e-seals and remote signatures (PAdES).
	Signing signing.ServiceConfig `yaml:"signing"`
	// Verify configures verification for relying parties (API and page).
	Verify verify.Config `yaml:"verify"`
	// Audit configures the audit log's signed checkpoints.
	Audit audit.CheckpointConfig `yaml:"audit"`
	// Metrics says where and to whom /metrics is served.
	Metrics MetricsConfig `yaml:"metrics,omitempty"`
	// TSL configures this deployment's own trusted list.
	TSL build.Config `yaml:"tsl,omitempty"`
	// Notify tells citizens at the government's notification gateway what
	// happens to their digital ID (off by default).
	Notify notify.Config `yaml:"notify,omitempty"`

	// dir is the data folder the file was read from.
	dir string
	// sha256 is the SHA-256 of the bytes Parse decoded, in hex ("" for a
	// configuration not parsed from a file: Default).
	sha256 string
}

// MetricsConfig says where and to whom the Prometheus metrics are served.
// By default they are on the main listener, to anyone (the local setup of
// `make run`). In production serve them on an address only the monitoring
// network reaches (Listen), and/or require a role (RequireRole) so that a
// scraper authenticates with a bearer token or a client certificate.
type MetricsConfig struct {
	// Listen, when set, serves /metrics on this host:port instead of the
	// main listener (plain HTTP: keep it on a private interface).
	Listen string `yaml:"listen,omitempty"`
	// RequireRole, when set, lets only callers holding this role read the
	// metrics (operator, registration-officer, agency or citizen).
	RequireRole string `yaml:"requireRole,omitempty"`
}

// DevelopmentIssuers returns the issuers of trusted development tokens.
func (c *Config) DevelopmentIssuers() []string {
	var out []string
	for _, ic := range c.Auth.Issuers {
		if ic.IsDevelopment() {
			out = append(out, ic.Issuer)
		}
	}
	return out
}

// LogConfig configures log/slog output.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// TLSConfig names the server's certificate and key files (PEM).
type TLSConfig struct {
	// CertFile is the certificate chain, leaf first.
	CertFile string `yaml:"certFile"`
	// KeyFile is the private key.
	KeyFile string `yaml:"keyFile"`
}

// KeysConfig names service keys on the token.
type KeysConfig struct {
	// DevTokenIssuer signs development API tokens (`thiqa token`).
	DevTokenIssuer string `yaml:"devTokenIssuer"`
}

// DevJWKSFile is where `thiqa init` publishes the development issuer's key.
const DevJWKSFile = "dev-issuer.jwks.json"

// Default returns the configuration of a local setup in dir: SoftHSM2 token
// in the data folder, embedded SQLite, development token issuer.
func Default(dir string) *Config {
	c := &Config{
		Listen:        "127.0.0.1:8080",
		PublicBaseURL: "http://127.0.0.1:8080",
		Log:           LogConfig{Level: "info", Format: "json"},
		HSM: hsm.TokenConfig{
			Module:     hsm.DefaultSoftHSMModule,
			TokenLabel: "thiqa",
			PINFile:    "secrets/user.pin",
			SoftHSM: &hsm.SoftHSMConfig{
				Conf:      "softhsm2.conf",
				TokenDir:  "tokens",
				SOPINFile: "secrets/so.pin",
			},
		},
		Store: store.DatabaseConfig{Driver: "sqlite", DSN: "thiqa.db", Synchronous: "FULL"},
		Auth: auth.Config{
			Issuers: []auth.IssuerConfig{auth.DevIssuerConfig(DevJWKSFile)},
		},
		Keys: KeysConfig{DevTokenIssuer: "pkcs11:token=thiqa;object=dev-token-issuer"},
		CA:   ca.DefaultConfig(),
		TSA:  timestamp.DefaultServiceConfig(),

		Revocation: revocation.DefaultConfig(),
		Identity:   identity.DefaultProviderConfig(),
		Signing:    signing.DefaultServiceConfig(),
		Verify:     verify.DefaultConfig(),
		Audit:      audit.DefaultCheckpointConfig("thiqa"),
	}
	c.dir = dir
	return c
}

// defaultHeader opens the printed default configuration.
const defaultHeader = `# Thiqa configuration (printed by thiqa config default). thiqa serve and
# thiqa init read it as DATA/thiqa.yaml; relative paths are relative to
# the data folder DATA. Decoding is strict: an unknown key is an error.
# Names marked PLACEHOLDER go into certificates: set them before thiqa init.
`

// DefaultText is the default configuration as `thiqa config default`
// prints it (a header of comments, then the YAML), with the TSA clock
// source clock when it is not "" (packages set the one production needs).
// It is not validated: Parse it to check what an operator would install.
func DefaultText(clock string) ([]byte, error) {
	c := Default("")
	if clock != "" {
		c.TSA.Timestamp.Clock.Source = clock
	}
	raw, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	return append([]byte(defaultHeader), raw...), nil
}

// Path returns the configuration file's path in dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Load reads and validates dir/thiqa.yaml.
func Load(dir string) (*Config, error) {
	raw, err := os.ReadFile(Path(dir))
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	c, err := Parse(raw, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Path(dir), err)
	}
	return c, nil
}

// Initial returns the configuration `thiqa init` completes dir with: the
// folder's own when it has one (then installed is true), else the file
// from (--config), else the local default.
func Initial(dir, from string) (c *Config, installed bool, err error) {
	if _, err := os.Stat(Path(dir)); err == nil {
		c, err := Load(dir)
		return c, true, err
	}
	if from == "" {
		return Default(dir), false, nil
	}
	raw, err := os.ReadFile(from)
	if err != nil {
		return nil, false, fmt.Errorf("reading --config: %w", err)
	}
	if c, err = Parse(raw, dir); err != nil {
		return nil, false, fmt.Errorf("%s: %w", from, err)
	}
	return c, false, nil
}

// Parse decodes a configuration strictly (unknown keys, duplicate keys and
// trailing documents are errors) and validates it.
func Parse(raw []byte, dir string) (*Config, error) {
	c := &Config{}
	if err := decodeStrict(raw, c); err != nil {
		return nil, err
	}
	c.dir = dir
	sum := sha256.Sum256(raw)
	c.sha256 = hex.EncodeToString(sum[:])
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes one YAML document into v, refusing unknown keys,
// an empty input and trailing documents.
func decodeStrict(raw []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("configuration is empty")
		}
		return fmt.Errorf("decoding configuration: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("configuration holds more than one YAML document")
	}
	return nil
}

// Marshal encodes the configuration as YAML.
func (c *Config) Marshal() ([]byte, error) { return marshalYAML(c, "configuration") }

// marshalYAML encodes v as YAML indented by two spaces; what names v in the
// error.
func marshalYAML(v any, what string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", what, err)
	}
	return buf.Bytes(), nil
}

// Dir is the data folder.
func (c *Config) Dir() string { return c.dir }

// SHA256 is the SHA-256, in hex, of the file the configuration was parsed
// from ("" when it was not parsed from one): the service.start record
// carries it, so that the audit log shows when thiqa.yaml changed.
func (c *Config) SHA256() string { return c.sha256 }

// Resolve returns p made absolute against the data folder.
func (c *Config) Resolve(p string) string { return resolveIn(c.dir, p) }

// resolveIn returns p made absolute against dir; an empty or absolute p is
// returned as it is.
func resolveIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Validate checks every field and returns the first problem, naming the key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	add := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	} else if !portInRange(port) {
		bad("listen", "port %s is not in 0 to 65535", port)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("publicBaseURL", "want an absolute http(s) URL, got %q", c.PublicBaseURL)
	} else if strings.HasSuffix(c.PublicBaseURL, "/") {
		bad("publicBaseURL", "must not end with a slash")
	} else if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(c.PublicBaseURL, "#") {
		// Paths are appended to it (/crl/…, /ocsp, /tsa) for certificates
		// and clients: user info, a query or a fragment would garble them.
		bad("publicBaseURL", "want a URL without user info, query or fragment, got %q", c.PublicBaseURL)
	} else if !portInRange(u.Port()) {
		bad("publicBaseURL", "port %s is not in 0 to 65535", u.Port())
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "want json or text, got %q", c.Log.Format)
	}
	add(c.HSM.Validate())
	add(c.Store.Validate())
	add(c.Auth.Validate())
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "want host:port, got %q", c.Metrics.Listen)
		} else if !portInRange(port) {
			bad("metrics.listen", "port %s is not in 0 to 65535", port)
		} else if c.Metrics.Listen == c.Listen {
			bad("metrics.listen", "must differ from listen (leave it empty to serve /metrics on the main listener)")
		}
	}
	if c.Metrics.RequireRole != "" {
		if _, err := policies.ParseRole(c.Metrics.RequireRole); err != nil {
			bad("metrics.requireRole", "%v", err)
		}
	}
	if c.Keys.DevTokenIssuer != "" && !strings.HasPrefix(c.Keys.DevTokenIssuer, "pkcs11:") {
		bad("keys.devTokenIssuer", "want a pkcs11: URI, got %q", c.Keys.DevTokenIssuer)
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("tls", "certFile and keyFile are required")
	}
	// The services that need the CA are checked against it: the TSA unit's
	// and the citizens' issuing CAs must be among its issuers.
	add(c.CA.Validate())
	add(c.TSA.Validate(c.CA.IsIssuer))
	add(c.Revocation.Validate(c.PublicBaseURL, c.CA.Enabled()))
	add(c.Signing.Validate())
	if c.CA.Enabled() { // without a CA there is no one to log in
		add(c.Identity.Validate(c.CA.IsIssuer))
	}
	add(c.Verify.Validate())
	add(c.Audit.Validate())
	add(c.TSL.Validate())
	add(c.Notify.Validate())
	errs = append(errs, c.keyURIProblems()...)
	if len(errs) > 0 {
		return errors.New("invalid configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// portInRange reports whether a port as written in an address is in 0 to
// 65535 when it is a number (net.SplitHostPort and url.Parse take any
// digits); a service name or no port is left to the listener.
func portInRange(port string) bool {
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return true
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n <= 65535
}

// keyURIProblems checks the pkcs11: URIs of the keys the configuration
// uses the way the server resolves them (hsm.TokenConfig.KeyLabel): each
// must name an object on the configured token, and no two settings may
// name the same key, so that every key keeps one purpose. Values that are
// not pkcs11: URIs at all are reported by their sections.
func (c *Config) keyURIProblems() []string {
	type keyURI struct{ key, uri string }
	var uris []keyURI
	add := func(key, uri string) {
		if strings.HasPrefix(uri, "pkcs11:") {
			uris = append(uris, keyURI{key, uri})
		}
	}
	add("keys.devTokenIssuer", c.Keys.DevTokenIssuer)
	if c.CA.Enabled() {
		if !c.CA.Root.Offline {
			add("ca.root.key", c.CA.Root.Key)
		}
		for i, is := range c.CA.Issuers {
			add(fmt.Sprintf("ca.issuers[%d].key", i), is.Key)
		}
		if c.Identity.Enabled() {
			add("identity.key", c.Identity.Key)
		}
	}
	if c.TSA.Enabled() {
		add("tsa.key", c.TSA.Key)
	}
	add("audit.checkpointKey", c.Audit.CheckpointKey)
	add("tsl.signerKey", c.TSL.SignerKey)
	var problems []string
	seen := map[string]string{}
	for _, k := range uris {
		label, err := c.HSM.KeyLabel(k.uri)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k.key, err))
			continue
		}
		if first, ok := seen[label]; ok {
			problems = append(problems, fmt.Sprintf("%s: names the key %q that %s names: each key has one purpose", k.key, label, first))
			continue
		}
		seen[label] = k.key
	}
	return problems
}

// ReadSecret returns a secret from the environment variable env when it is
// named, else from file (trailing newline removed). The error names where it
// looked, never the secret.
func ReadSecret(file, env string) (string, error) {
	if env != "" {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	v := strings.TrimRight(string(raw), "\r\n")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return v, nil
}

// PIN returns the HSM user PIN.
func (c *Config) PIN() (string, error) {
	pin, err := ReadSecret(c.Resolve(c.HSM.PINFile), c.HSM.PINEnv)
	if err != nil {
		return "", fmt.Errorf("HSM user PIN: %w", err)
	}
	return pin, nil
}

// StoreDSN returns the database DSN, with a relative SQLite path resolved.
func (c *Config) StoreDSN() (string, error) {
	if c.Store.DSNEnv != "" {
		v := os.Getenv(c.Store.DSNEnv)
		if v == "" {
			return "", fmt.Errorf("store DSN: environment variable %s is not set", c.Store.DSNEnv)
		}
		return v, nil
	}
	if c.Store.Driver == store.DriverSQLite {
		return c.Resolve(c.Store.DSN), nil
	}
	return c.Store.DSN, nil
}

// ResolvedAuth returns the authentication configuration with its file names
// made absolute against the data folder.
func (c *Config) ResolvedAuth() auth.Config {
	a := c.Auth
	a.Issuers = append([]auth.IssuerConfig(nil), c.Auth.Issuers...)
	for i := range a.Issuers {
		a.Issuers[i].JWKSFile = c.Resolve(a.Issuers[i].JWKSFile)
	}
	a.MTLS.ClientCAFiles = nil
	for _, f := range c.Auth.MTLS.ClientCAFiles {
		a.MTLS.ClientCAFiles = append(a.MTLS.ClientCAFiles, c.Resolve(f))
	}
	return a
}

// ResolvedAudit returns the audit section with defaults filled in (the
// checkpoint key on the configured token) and its file names made absolute
// against the data folder.
func (c *Config) ResolvedAudit() audit.CheckpointConfig {
	a := c.Audit.WithDefaults(c.HSM.TokenLabel)
	a.CheckpointFile = c.Resolve(a.CheckpointFile)
	a.CheckpointPublicKey = c.Resolve(a.CheckpointPublicKey)
	return a
}

// ResolvedTSL returns the tsl section with defaults (the signer key on the
// configured token) and absolute file names.
func (c *Config) ResolvedTSL() build.Config {
	t := c.TSL.WithDefaults(c.HSM.TokenLabel)
	t.SignerCertificate = c.Resolve(t.SignerCertificate)
	t.File = c.Resolve(t.File)
	return t
}
