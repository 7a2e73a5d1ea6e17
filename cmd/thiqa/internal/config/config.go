// Package config reads Thiqa's configuration: one YAML file (thiqa.yaml) in
// the data folder, decoded strictly (unknown keys are errors), completed with
// defaults for a local setup and validated before anything is built from it.
// Relative paths in the file are relative to the data folder.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// FileName is the configuration file's name inside the data folder.
const FileName = "thiqa.yaml"

// DefaultSoftHSMModule is where Debian's softhsm2 package installs its module.
const DefaultSoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// Config is the whole of thiqa.yaml.
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
	HSM HSMConfig `yaml:"hsm"`
	// Store names the database.
	Store StoreConfig `yaml:"store"`
	// Auth configures who may call the protected APIs: JWT issuers and
	// mutual-TLS client CAs. Relative file names are relative to the data folder.
	Auth auth.Config `yaml:"auth"`
	// Keys names the service keys on the token by RFC 7512 URI.
	Keys KeysConfig `yaml:"keys"`
	// TLS, when set, serves HTTPS; mutual-TLS clients need it.
	TLS *TLSConfig `yaml:"tls,omitempty"`
	// CA configures the certificate authority (root and issuing CAs).
	CA CAConfig `yaml:"ca"`
	// TSA configures the time-stamping authority (RFC 3161).
	TSA TSAConfig `yaml:"tsa"`
	// Revocation configures CRLs, the OCSP responder and revocation polling.
	Revocation RevocationConfig `yaml:"revocation"`
	// Identity configures the digital-ID service (OpenID Connect provider).
	Identity IdentityConfig `yaml:"identity"`
	// Signing configures e-seals and remote signatures (PAdES).
	Signing SigningConfig `yaml:"signing"`
	// Verify configures verification for relying parties (API and page).
	Verify VerifyConfig `yaml:"verify"`
	// Audit configures the audit log's signed checkpoints.
	Audit AuditConfig `yaml:"audit"`
	// Metrics says where and to whom /metrics is served.
	Metrics MetricsConfig `yaml:"metrics,omitempty"`
	// TSL configures this deployment's own trusted list.
	TSL TSLConfig `yaml:"tsl,omitempty"`

	// dir is the data folder the file was read from.
	dir string
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

// HSMConfig names the PKCS#11 module, token and PIN.
type HSMConfig struct {
	// Module is the path of the PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel is the label of the token holding Thiqa's keys.
	TokenLabel string `yaml:"tokenLabel"`
	// PINFile is a file holding the user PIN (relative to the data folder).
	PINFile string `yaml:"pinFile"`
	// PINEnv names an environment variable holding the user PIN; it wins over PINFile.
	PINEnv string `yaml:"pinEnv"`
	// SoftHSM, when set, means Thiqa manages a SoftHSM2 token in the data
	// folder: `thiqa init` creates it.
	SoftHSM *SoftHSMConfig `yaml:"softhsm"`
	// PoolSize bounds the concurrent sessions (0: twice the CPUs).
	PoolSize int `yaml:"poolSize"`
	// VerifyAfterSign checks every signature with the public key before use.
	VerifyAfterSign bool `yaml:"verifyAfterSign"`
}

// SoftHSMConfig describes a SoftHSM2 token that lives in the data folder.
type SoftHSMConfig struct {
	// Conf is the SoftHSM2 configuration file (SOFTHSM2_CONF).
	Conf string `yaml:"conf"`
	// TokenDir is the folder holding the token files.
	TokenDir string `yaml:"tokenDir"`
	// SOPINFile holds the security officer PIN used to create the token.
	SOPINFile string `yaml:"soPinFile"`
}

// StoreConfig names the database.
type StoreConfig struct {
	// Driver is sqlite (embedded, the default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the SQLite file (relative to the data folder) or a PostgreSQL URL.
	DSN string `yaml:"dsn"`
	// DSNEnv names an environment variable holding the DSN (keeps passwords out of the file).
	DSNEnv string `yaml:"dsnEnv"`
	// MaxOpenConns bounds the connection pool (0: driver default).
	MaxOpenConns int `yaml:"maxOpenConns"`
	// Synchronous is SQLite's durability: FULL (the default) fsyncs every
	// commit, so an audit record, and the time-stamp token or certificate
	// it covers, survives a power failure once the response is sent;
	// NORMAL survives a crash of the process only. Ignored for PostgreSQL,
	// whose durability is the database server's configuration (keep its
	// fsync and synchronous_commit on).
	Synchronous string `yaml:"synchronous"`
}

// SQLiteSynchronous is the SQLite synchronous setting to open the store
// with: the configured one, FULL when none is configured.
func (s StoreConfig) SQLiteSynchronous() string {
	if s.Driver != "sqlite" {
		return ""
	}
	if s.Synchronous == "" {
		return "FULL"
	}
	return strings.ToUpper(s.Synchronous)
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
		HSM: HSMConfig{
			Module:     DefaultSoftHSMModule,
			TokenLabel: "thiqa",
			PINFile:    "secrets/user.pin",
			SoftHSM: &SoftHSMConfig{
				Conf:      "softhsm2.conf",
				TokenDir:  "tokens",
				SOPINFile: "secrets/so.pin",
			},
		},
		Store: StoreConfig{Driver: "sqlite", DSN: "thiqa.db", Synchronous: "FULL"},
		Auth: auth.Config{
			Issuers: []auth.IssuerConfig{auth.DevIssuerConfig(DevJWKSFile)},
		},
		Keys: KeysConfig{DevTokenIssuer: "pkcs11:token=thiqa;object=dev-token-issuer"},
		CA:   DefaultCAConfig(),
		TSA:  DefaultTSAConfig(),

		Revocation: DefaultRevocationConfig(),
		Identity:   DefaultIdentityConfig(),
		Signing:    DefaultSigningConfig(),
		Verify:     DefaultVerifyConfig(),
		Audit:      DefaultAuditConfig("thiqa"),
	}
	c.dir = dir
	return c
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

// Parse decodes a configuration strictly (unknown keys, duplicate keys and
// trailing documents are errors) and validates it.
func Parse(raw []byte, dir string) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("configuration is empty")
		}
		return nil, fmt.Errorf("decoding configuration: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("configuration holds more than one YAML document")
	}
	c.dir = dir
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Marshal encodes the configuration as YAML.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// Dir is the data folder.
func (c *Config) Dir() string { return c.dir }

// Resolve returns p made absolute against the data folder.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Validate checks every field and returns the first problem, naming the key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("publicBaseURL", "want an absolute http(s) URL, got %q", c.PublicBaseURL)
	} else if strings.HasSuffix(c.PublicBaseURL, "/") {
		bad("publicBaseURL", "must not end with a slash")
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
	c.HSM.validate(bad)
	switch c.Store.Driver {
	case "sqlite", "postgres":
	default:
		bad("store.driver", "want sqlite or postgres, got %q", c.Store.Driver)
	}
	if c.Store.DSN == "" && c.Store.DSNEnv == "" {
		bad("store", "one of dsn or dsnEnv is required")
	}
	if c.Store.MaxOpenConns < 0 {
		bad("store.maxOpenConns", "must not be negative")
	}
	switch strings.ToUpper(c.Store.Synchronous) {
	case "", "NORMAL", "FULL":
	default:
		bad("store.synchronous", "want FULL or NORMAL, got %q", c.Store.Synchronous)
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "want host:port, got %q", c.Metrics.Listen)
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
	if err := c.CA.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := validateTSA(c.TSA, c.CA); err != nil {
		errs = append(errs, err.Error())
	}
	if err := c.Revocation.Validate(c.PublicBaseURL, c.CA.Enabled()); err != nil {
		errs = append(errs, err.Error())
	}
	if err := c.Signing.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := validateIdentity(c.Identity, c.CA); err != nil {
		errs = append(errs, err.Error())
	}
	if err := c.Verify.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := c.Audit.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	errs = append(errs, c.TSL.Validate()...)
	if len(errs) > 0 {
		return errors.New("invalid configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// validate reports the problems of the hsm section through bad.
func (h HSMConfig) validate(bad func(key, format string, args ...any)) {
	if h.Module == "" {
		bad("hsm.module", "must name the PKCS#11 library")
	}
	if h.TokenLabel == "" || len(h.TokenLabel) > 32 {
		bad("hsm.tokenLabel", "must be 1 to 32 bytes, got %q", h.TokenLabel)
	}
	if h.PINFile == "" && h.PINEnv == "" {
		bad("hsm", "one of pinFile or pinEnv is required")
	}
	if h.PoolSize < 0 {
		bad("hsm.poolSize", "must not be negative")
	}
	if s := h.SoftHSM; s != nil {
		if s.Conf == "" || s.TokenDir == "" || s.SOPINFile == "" {
			bad("hsm.softhsm", "conf, tokenDir and soPinFile are required")
		}
	}
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
	if c.Store.Driver == "sqlite" {
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
