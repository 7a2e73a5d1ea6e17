package config

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/tsl/build"
)

// productionConfig is a configuration that follows every row of
// docs/operations.md's "Configure for production" table: it validates,
// and ProductionWarnings has nothing to say about it.
func productionConfig(t *testing.T) *Config {
	t.Helper()
	c := Default(t.TempDir())
	c.Production = true
	c.PublicBaseURL = "http://trust.gov.example" // CRLs and OCSP are fetched over http
	c.Identity.Issuer = "https://id.gov.example"
	c.Auth.Issuers = []auth.IssuerConfig{{Issuer: "https://idp.gov.example", Audience: "thiqa", JWKSURL: "https://idp.gov.example/jwks.json"}}
	c.Keys.DevTokenIssuer = ""
	c.Auth.MTLS.ClientCAFiles = []string{"ca/citizen.crt", "ca/organisation.crt"}
	c.TLS = &TLSConfig{CertFile: "tls/server.crt", KeyFile: "tls/server.key"}
	c.Metrics = MetricsConfig{Listen: "10.0.0.5:9464", RequireRole: "operator"}
	c.TSA.Timestamp.Clock.Source = timestamp.ClockChrony
	c.Store = store.DatabaseConfig{Driver: store.DriverPostgres, DSNEnv: "THIQA_DSN"}
	c.HSM.Module, c.HSM.PINFile, c.HSM.PINEnv, c.HSM.SoftHSM = "/usr/lib/vendor/libvendorpkcs11.so", "", "THIQA_PIN", nil
	c.Verify.FetchAllowHosts = []string{"ocsp.ca.internal:80", "10.1.2.3:80", "[fd00::5]:8080"}
	c.Identity.Mobile.NumberMatching = true
	c.Signing.PINPolicy.FirstPINActivation = true
	c.TSL.Operator = "Government Trust Services"
	c.TSL.Address = build.Address{Street: "1 Trust Street", Locality: "Muscat", PostalCode: "100", Country: "OM", Email: "trust@gov.example"}
	c.CA.Root = ca.KeyConfig{Name: "root", Offline: true}
	rename := func(s string) string { return strings.ReplaceAll(s, " (PLACEHOLDER)", "") }
	for i := range c.CA.Issuers {
		c.CA.Issuers[i].CommonName, c.CA.Issuers[i].Organization = rename(c.CA.Issuers[i].CommonName), rename(c.CA.Issuers[i].Organization)
	}
	c.TSA.CommonName, c.TSA.Organization = rename(c.TSA.CommonName), rename(c.TSA.Organization)
	if err := c.Validate(); err != nil {
		t.Fatalf("the production configuration does not validate: %v", err)
	}
	return c
}

// In production the development defaults left in the configuration are
// named, each under its key; outside production nothing is said, and a
// configuration that follows the whole production table gets no warning.
func TestProductionWarnings(t *testing.T) {
	c := Default(t.TempDir())
	if w := c.ProductionWarnings(); len(w) != 0 {
		t.Fatalf("outside production: %v", w)
	}
	c.Production = true
	w := strings.Join(c.ProductionWarnings(), "\n")
	for _, key := range []string{"ca.root.commonName", "ca.root.organization", "ca.issuers[0].commonName", "ca.issuers[2].organization",
		"tsa.commonName", "tsa.organization", "tsa.clock.source is static", "ca.root is on the online token",
		"metrics.listen is not set", "metrics.requireRole is not set", "hsm.softhsm is set", "publicBaseURL is on this host only",
		"identity.issuer is not set", "keys.devTokenIssuer is set", "store.driver is sqlite: one node only",
		"identity.mobile.numberMatching is off", "signing.pinPolicy.firstPINActivation is off", "tsl.operator is not set",
		`tsl.address is a placeholder (street "PLACEHOLDER", locality "PLACEHOLDER")`} {
		if !strings.Contains(w, key) {
			t.Errorf("no warning for %s:\n%s", key, w)
		}
	}
	// The two first warnings keep their words: operators and scripts know them.
	for _, line := range []string{
		`ca.root.commonName is a placeholder ("Thiqa Root CA (PLACEHOLDER)"): set the name before ` + "`thiqa init`" + ` makes the certificate`,
		"tsa.clock.source is static: the TSA declares the clock in sync without checking it (development only); use chrony or kernel",
	} {
		if !strings.Contains(w, line) {
			t.Errorf("the warning %q changed:\n%s", line, w)
		}
	}
	if w := productionConfig(t).ProductionWarnings(); len(w) != 0 {
		t.Fatalf("a configuration following the production table:\n%s", strings.Join(w, "\n"))
	}
}

// Each setting of the production table that the configuration decides is
// warned about, alone, when it is wrong, and only while the service it
// concerns runs.
func TestProductionWarningsEachSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(*Config)
		want string // "" when no warning is due
	}{
		{"placeholder name", func(c *Config) { c.CA.Issuers[1].CommonName = "Org CA (PLACEHOLDER)" }, "ca.issuers[1].commonName is a placeholder"},
		{"static clock", func(c *Config) { c.TSA.Timestamp.Clock.Source = timestamp.ClockStatic }, "tsa.clock.source is static"},
		{"trusted list operator left to its default", func(c *Config) { c.TSL.Operator = "" }, `tsl.operator is not set: ` + "`thiqa tsl build`" + ` names the scheme operator and the trust service provider of this deployment's trusted list "Thiqa"`},
		{"trusted list address left to its default", func(c *Config) { c.TSL.Address = build.Address{} }, `tsl.address is a placeholder (street "PLACEHOLDER", locality "PLACEHOLDER"): ` + "`thiqa tsl build`" + ` writes it as the postal address`},
		{"trusted list street still the placeholder", func(c *Config) { c.TSL.Address.Street = "PLACEHOLDER" }, `tsl.address is a placeholder (street "PLACEHOLDER", locality "Muscat")`},
		{"trusted list locality left out", func(c *Config) { c.TSL.Address.Locality = "" }, `tsl.address is a placeholder (street "1 Trust Street", locality "PLACEHOLDER")`},
		{"trusted list address, no CA", func(c *Config) { c.TSL.Address, c.CA, c.TSA.Key, c.Identity.Key = build.Address{}, ca.Config{}, "", "" }, ""},
		{"trusted list operator, no CA", func(c *Config) { c.TSL.Operator, c.CA, c.TSA.Key, c.Identity.Key = "", ca.Config{}, "", "" }, ""},
		{"kernel clock", func(c *Config) { c.TSA.Timestamp.Clock.Source = timestamp.ClockKernel }, ""},
		{"static clock, no TSA", func(c *Config) { c.TSA.Timestamp.Clock.Source, c.TSA.Key = timestamp.ClockStatic, "" }, ""},
		{"online root", func(c *Config) {
			c.CA.Root = ca.DefaultConfig().Root
			c.CA.Root.CommonName, c.CA.Root.Organization = "Root CA", "Trust Services"
		}, "ca.root is on the online token"},
		{"offline root with the default subject left in its section", func(c *Config) {
			c.CA.Root = ca.DefaultConfig().Root
			c.CA.Root.Key, c.CA.Root.Offline = "", true
		}, ""},
		{"online root, no CA", func(c *Config) { c.CA, c.TSA.Key, c.Identity.Key = ca.Config{}, "", "" }, ""},
		{"metrics on the main listener", func(c *Config) { c.Metrics.Listen = "" }, "metrics.listen is not set"},
		// With a role required, the main listener does not serve them to
		// whoever reaches it: the warning must not say it does.
		{"metrics on the main listener, role required", func(c *Config) { c.Metrics.Listen = "" }, "(metrics.requireRole answers only holders of operator)"},
		{"metrics to anyone", func(c *Config) { c.Metrics.RequireRole = "" }, "metrics.requireRole is not set"},
		{"metrics to every citizen", func(c *Config) { c.Metrics.RequireRole = "citizen" }, "metrics.requireRole is citizen"},
		{"metrics to registration officers", func(c *Config) { c.Metrics.RequireRole = "registration-officer" }, ""},
		{"softhsm section", func(c *Config) { c.HSM.SoftHSM = Default("").HSM.SoftHSM }, "hsm.softhsm is set"},
		{"softhsm module", func(c *Config) { c.HSM.Module = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so" }, "hsm.module is SoftHSM"},
		{"mutual TLS without TLS", func(c *Config) { c.TLS = nil }, "tls is not set while auth.mtls.clientCAFiles is"},
		{"TLS at the load balancer, no mutual TLS", func(c *Config) { c.TLS, c.Auth.MTLS.ClientCAFiles = nil, nil }, ""},
		{"loopback publicBaseURL", func(c *Config) { c.PublicBaseURL = "http://127.0.0.1:8080" }, "publicBaseURL is on this host only"},
		{"localhost publicBaseURL", func(c *Config) { c.PublicBaseURL = "http://localhost" }, "publicBaseURL is on this host only"},
		// identity.issuer is set: the issuer is not publicBaseURL.
		{"loopback publicBaseURL, own OIDC issuer", func(c *Config) { c.PublicBaseURL = "http://[::1]:8080" }, "it goes into every certificate (AIA, CRL, OCSP); set"},
		{"loopback publicBaseURL, no CA", func(c *Config) {
			c.PublicBaseURL, c.CA, c.TSA.Key, c.Identity.Key = "http://localhost.:8080", ca.Config{}, "", ""
		}, "it goes into the links this deployment hands out; set"},
		{"http OIDC issuer", func(c *Config) { c.Identity.Issuer = "http://id.gov.example" }, "identity.issuer is http"},
		{"http OIDC issuer with a password", func(c *Config) { c.Identity.Issuer = "http://thiqa:s3cret@id.gov.example" }, `identity.issuer is http ("http://thiqa:xxxxx@id.gov.example")`},
		{"OIDC issuer from publicBaseURL", func(c *Config) { c.Identity.Issuer = "" }, "identity.issuer is not set: the OpenID Connect issuer is then publicBaseURL, http"},
		{"OIDC issuer from publicBaseURL, no digital ID", func(c *Config) { c.Identity.Issuer, c.Identity.Key = "", "" }, ""},
		{"development issuer key", func(c *Config) { c.Keys.DevTokenIssuer = "pkcs11:token=thiqa;object=dev-token-issuer" }, "keys.devTokenIssuer is set"},
		{"sqlite", func(c *Config) { c.Store = store.DatabaseConfig{Driver: store.DriverSQLite, DSN: "thiqa.db"} }, "store.driver is sqlite: one node only"},
		{"loopback fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"127.0.0.1:8080"} }, "verify.fetchAllowHosts[0] is \"127.0.0.1:8080\", an address of this host"},
		{"metadata fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"ocsp.ca.internal", "169.254.169.254"} }, "verify.fetchAllowHosts[1] is \"169.254.169.254\", an address of this host"},
		{"AWS IPv6 metadata fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"[fd00:ec2::254]:80"} }, "verify.fetchAllowHosts[0] is \"[fd00:ec2::254]:80\", the address of a cloud's metadata service"},
		{"Alibaba metadata fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"10.1.2.3", "100.100.100.200"} }, "verify.fetchAllowHosts[1] is \"100.100.100.200\", the address of a cloud's metadata service"},
		{"shared address space fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"100.100.100.201:80"} }, ""},
		{"localhost fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"localhost:80"} }, "verify.fetchAllowHosts[0] is \"localhost:80\", an address of this host"},
		{"public fetch host", func(c *Config) { c.Verify.FetchAllowHosts = []string{"[2001:4860:4860::8888]:80"} }, "a public address"},
		{"loopback fetch host, offline revocation", func(c *Config) {
			c.Verify.FetchAllowHosts, c.Verify.OfflineRevocation = []string{"127.0.0.1:8080"}, true
		}, ""},
		{"number matching off", func(c *Config) { c.Identity.Mobile.NumberMatching = false }, "identity.mobile.numberMatching is off"},
		{"number matching off, no digital ID", func(c *Config) { c.Identity.Mobile.NumberMatching, c.Identity.Key = false, "" }, ""},
		{"first PIN without activation", func(c *Config) { c.Signing.PINPolicy.FirstPINActivation = false }, "signing.pinPolicy.firstPINActivation is off"},
		{"first PIN without activation, no signing", func(c *Config) { c.Signing.PINPolicy.FirstPINActivation, c.Signing.Disabled = false, true }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := productionConfig(t)
			tc.bad(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("the changed configuration does not validate: %v", err)
			}
			w := c.ProductionWarnings()
			if tc.want == "" {
				if len(w) != 0 {
					t.Fatalf("warned:\n%s", strings.Join(w, "\n"))
				}
				return
			}
			if len(w) != 1 || !strings.Contains(w[0], tc.want) {
				t.Fatalf("want one warning with %q, got:\n%s", tc.want, strings.Join(w, "\n"))
			}
			c.Production = false
			if w := c.ProductionWarnings(); len(w) != 0 {
				t.Fatalf("outside production: %v", w)
			}
		})
	}
}

// A SQLite store that gives up FULL durability is named too, beside the
// one-node warning every SQLite store gets.
func TestProductionWarningsSQLiteNormal(t *testing.T) {
	c := productionConfig(t)
	c.Store = store.DatabaseConfig{Driver: store.DriverSQLite, DSN: "thiqa.db", Synchronous: "normal"}
	w := strings.Join(c.ProductionWarnings(), "\n")
	for _, want := range []string{"store.driver is sqlite: one node only", "store.synchronous is NORMAL"} {
		if !strings.Contains(w, want) {
			t.Errorf("no %q:\n%s", want, w)
		}
	}
}

// A PostgreSQL DSN written in the file with its password is named, without
// the DSN itself; one without a password (peer or certificate
// authentication, a password file) is not.
func TestProductionWarningsDSNPassword(t *testing.T) {
	for _, tc := range []struct {
		dsn, env string
		want     bool
	}{
		{"postgres://thiqa:s3cret-pw@db.internal:5432/thiqa?sslmode=verify-full", "", true},
		{"postgresql://thiqa@db.internal/thiqa?password=s3cret-pw", "", true},
		{"host=db.internal user=thiqa password=s3cret-pw dbname=thiqa", "", true},
		{"host=db.internal user=thiqa PASSWORD = s3cret-pw", "", true},
		{"postgres://thiqa:s3cret-pw@db.internal/thiqa", "THIQA_DSN", true}, // still in the file
		{"postgres://thiqa@db.internal/thiqa?sslmode=verify-full&sslcert=/etc/thiqa/db.crt", "", false},
		{"host=/run/postgresql user=thiqa passfile=/etc/thiqa/pgpass dbname=thiqa", "", false},
		{"", "THIQA_DSN", false},
	} {
		c := productionConfig(t)
		c.Store = store.DatabaseConfig{Driver: store.DriverPostgres, DSN: tc.dsn, DSNEnv: tc.env}
		if err := c.Validate(); err != nil {
			t.Fatalf("%q: %v", tc.dsn, err)
		}
		w := strings.Join(c.ProductionWarnings(), "\n")
		if got := strings.Contains(w, "store.dsn holds the database password"); got != tc.want {
			t.Errorf("%q (dsnEnv %q): warned %v, want %v:\n%s", tc.dsn, tc.env, got, tc.want, w)
		}
		if strings.Contains(w, "s3cret") || strings.Contains(w, "db.internal") {
			t.Errorf("%q: the DSN is in the warning:\n%s", tc.dsn, w)
		}
	}
}
