package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/verify"
)

// placeholder marks the default subject names that are to be replaced.
const placeholder = "PLACEHOLDER"

// ProductionWarnings lists what a production deployment should not keep
// from the development defaults but that serve does not refuse: every row
// of docs/operations.md's "Configure for production" table that the
// configuration alone decides. One line each, starting with its YAML key
// and saying what to do: subject names still marked PLACEHOLDER, which
// the CA and TSA certificates carry for their whole life once `thiqa init`
// has made them (not an offline root's, whose names are its
// certificate's), the trusted list's operator left to its default and its
// postal address still PLACEHOLDER; a TSA clock declared in sync without any check; a root
// key on the online token; /metrics on the main listener, or to anyone or
// every citizen; a SoftHSM token; mutual TLS without TLS; a publicBaseURL
// on a loopback address; an http OpenID Connect issuer; the development
// token issuer's key; a PostgreSQL DSN with its password in the file; a
// SQLite store (one node only) or one without FULL durability; allowed
// fetch hosts that are this host's own, a cloud metadata service's or
// public addresses; mobile logins without number matching; first signing
// PINs set without an activation code. Each is said only while the
// service it concerns is enabled. No secret is quoted. It is empty unless
// Production is set.
func (c *Config) ProductionWarnings() []string {
	if !c.Production {
		return nil
	}
	var out []string
	warn := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	c.nameWarnings(warn)
	if c.TSA.Enabled() && c.TSA.Timestamp.Clock.Source == timestamp.ClockStatic {
		warn("tsa.clock.source is static: the TSA declares the clock in sync without checking it (development only); use chrony or kernel")
	}
	if c.CA.Enabled() && !c.CA.Root.Offline {
		warn("ca.root is on the online token (no offline: true): keep the root key offline, made in a key ceremony (docs/ceremony.md, `thiqa init --root-cert`); a deployment already in service takes this root offline with `thiqa ca root adopt` and `thiqa ca root retire-online` (docs/ceremony.md, Taking an existing online root offline)")
	}
	c.accessWarnings(warn)
	c.keepingWarnings(warn)
	c.serviceWarnings(warn)
	return out
}

// nameWarnings names the subject names still marked PLACEHOLDER.
func (c *Config) nameWarnings(warn func(string, ...any)) {
	named := func(key, value string) {
		if strings.Contains(value, placeholder) {
			warn("%s is a placeholder (%q): set the name before `thiqa init` makes the certificate", key, value)
		}
	}
	if c.CA.Enabled() {
		kc := func(key string, k ca.KeyConfig) {
			named(key+".commonName", k.CommonName)
			named(key+".organization", k.Organization)
		}
		// An offline root's subject is its certificate's (`thiqa init
		// --root-cert`): what the section still says is a leftover that
		// names nothing, and no init makes a root certificate from it.
		if !c.CA.Root.Offline {
			kc("ca.root", c.CA.Root)
		}
		for i, is := range c.CA.Issuers {
			kc(fmt.Sprintf("ca.issuers[%d]", i), is)
		}
	}
	if c.TSA.Enabled() {
		named("tsa.commonName", c.TSA.CommonName)
		named("tsa.organization", c.TSA.Organization)
	}
	// The deployment's own trusted list names its scheme operator and trust
	// service provider; left out, `thiqa tsl build` signs it as "Thiqa".
	if c.CA.Enabled() && c.TSL.Operator == "" {
		warn("tsl.operator is not set: `thiqa tsl build` names the scheme operator and the trust service provider of this deployment's trusted list %q; set your organisation's name", c.TSL.WithDefaults(c.HSM.TokenLabel).Operator)
	}
	// Its postal address is the operator's and the provider's too; left
	// out, the list says PLACEHOLDER.
	if c.CA.Enabled() && c.TSL.Address.IsPlaceholder() {
		a := c.TSL.WithDefaults(c.HSM.TokenLabel).Address
		warn("tsl.address is a placeholder (street %q, locality %q): `thiqa tsl build` writes it as the postal address of the scheme operator and the trust service provider of this deployment's trusted list; set tsl.address (street, locality, postalCode, country, email) to your organisation's", a.Street, a.Locality)
	}
}

// accessWarnings covers who reaches what: the development issuer's key,
// mutual TLS without TLS, /metrics, publicBaseURL and the OIDC issuer.
func (c *Config) accessWarnings(warn func(string, ...any)) {
	if c.Keys.DevTokenIssuer != "" {
		warn("keys.devTokenIssuer is set: `thiqa init` makes the development issuer's key, which mints tokens for any role; remove it (with the development issuer in auth.issuers)")
	}
	// Client certificates reach thiqa only over its own TLS: it reads no
	// certificate a load balancer forwards in a header. Without client CAs
	// a load balancer in front may terminate TLS: nothing is said then.
	if len(c.Auth.MTLS.ClientCAFiles) > 0 && c.TLS == nil {
		warn("tls is not set while auth.mtls.clientCAFiles is: thiqa then serves plain HTTP and sees no client certificate, so mutual TLS is off; set tls (certFile, keyFile), and let a load balancer in front pass TLS through")
	}
	switch {
	case c.Metrics.Listen == "" && c.Metrics.RequireRole == "":
		warn("metrics.listen is not set: /metrics is served on the main listener, to whoever reaches it; set an address only the monitoring network reaches (e.g. 10.0.0.5:9464)")
	case c.Metrics.Listen == "":
		warn("metrics.listen is not set: /metrics is served on the main listener, where anyone reaching the service can ask for it (metrics.requireRole answers only holders of %s); set an address only the monitoring network reaches (e.g. 10.0.0.5:9464)", c.Metrics.RequireRole)
	}
	switch policies.Role(c.Metrics.RequireRole) {
	case "":
		warn("metrics.requireRole is not set: whoever reaches /metrics reads it; set operator, and let Prometheus scrape with a bearer token or a client certificate")
	case policies.RoleCitizen:
		warn("metrics.requireRole is citizen: every citizen holding a token reads /metrics; set operator, and let Prometheus scrape with a bearer token or a client certificate")
	}
	// publicBaseURL is http:// wherever the CA runs (CRLs are fetched
	// over http: revocation.crl refuses https), so its scheme says nothing
	// wrong; a loopback host does.
	if u, err := url.Parse(c.PublicBaseURL); err == nil && loopbackHost(u.Hostname()) {
		// Say only where this configuration puts it.
		into := "the links this deployment hands out"
		if c.CA.Enabled() {
			into = "every certificate (AIA, CRL, OCSP)"
			if c.Identity.Enabled() && c.Identity.Issuer == "" {
				into += " and the OIDC issuer"
			}
		}
		warn("publicBaseURL is on this host only (%q): it goes into %s; set the URL relying parties reach (the load balancer)", c.PublicBaseURL, into)
	}
	if c.CA.Enabled() && c.Identity.Enabled() {
		iss := c.Identity.IssuerOr(c.PublicBaseURL)
		if u, err := url.Parse(iss); err == nil && u.Scheme == "http" {
			if c.Identity.Issuer != "" {
				if u.User != nil {
					iss = u.Redacted() // a password there is not for the log
				}
				warn("identity.issuer is http (%q): the OpenID Connect provider's endpoints, where citizens log in, are plain HTTP; set its https URL that portals reach", iss)
			} else {
				warn("identity.issuer is not set: the OpenID Connect issuer is then publicBaseURL, http (%q), and the endpoints where citizens log in are plain HTTP; set identity.issuer to the provider's https URL that portals reach (publicBaseURL stays http for CRLs and OCSP)", iss)
			}
		}
	}
}

// keepingWarnings covers where keys and records are kept: the token and
// the store.
func (c *Config) keepingWarnings(warn func(string, ...any)) {
	if c.HSM.SoftHSM != nil {
		warn("hsm.softhsm is set: Thiqa keeps a SoftHSM token in the data folder, whose keys are files on the host; use the HSM vendor's PKCS#11 module, tokenLabel and pinEnv, without a softhsm section")
	} else if strings.Contains(strings.ToLower(filepath.Base(c.HSM.Module)), "softhsm") {
		warn("hsm.module is SoftHSM (%q): its keys are files on the host; use the HSM vendor's PKCS#11 module", c.HSM.Module)
	}
	if c.Store.Driver == store.DriverPostgres && dsnHasPassword(c.Store.DSN) {
		warn("store.dsn holds the database password, in the configuration file: put the DSN in an environment variable and name it in store.dsnEnv (e.g. THIQA_DSN), without store.dsn")
	}
	if c.Store.Driver == store.DriverSQLite {
		warn("store.driver is sqlite: one node only; for more than one node use {driver: postgres, dsnEnv: THIQA_DSN}")
		if strings.EqualFold(c.Store.Synchronous, "NORMAL") {
			warn("store.synchronous is NORMAL: a power failure can lose records whose answer was sent; set FULL")
		}
	}
}

// serviceWarnings covers the settings of the services: the verifier's
// fetches, mobile logins and first signing PINs.
func (c *Config) serviceWarnings(warn func(string, ...any)) {
	if !c.Verify.Disabled && !c.Verify.OfflineRevocation {
		for i, h := range c.Verify.FetchAllowHosts {
			hosts, err := verify.ParseFetchHost(h)
			if err != nil || len(hosts) == 0 {
				continue // Validate refuses it
			}
			host, _, err := net.SplitHostPort(hosts[0])
			if err != nil {
				continue
			}
			if loopbackHost(host) || nonNetworkAddress(host) {
				warn("verify.fetchAllowHosts[%d] is %q, an address of this host or of no network (loopback, link-local such as the cloud metadata service, unspecified, multicast): any anonymous upload could make the verifier fetch from it; remove it, and list only responders of trusted CAs on a private network", i, h)
			} else if metadataAddress(host) {
				warn("verify.fetchAllowHosts[%d] is %q, the address of a cloud's metadata service (which hands out the instance's credentials): any anonymous upload could make the verifier fetch from it; remove it, and list only responders of trusted CAs on a private network", i, h)
			} else if a, err := netip.ParseAddr(host); err == nil && verify.PublicAddress(a) {
				warn("verify.fetchAllowHosts[%d] is %q, a public address, which fetches reach without being listed; remove it, and list only responders of trusted CAs on a private network", i, h)
			}
		}
	}
	if c.CA.Enabled() && c.Identity.Enabled() && !c.Identity.Mobile.NumberMatching {
		warn("identity.mobile.numberMatching is off: the phone shows the verification codes of pending logins, so a login someone else started with a citizen's number can be approved with one tap; set true once the citizens' app asks for the code")
	}
	if c.Signing.Enabled(c.CA) && !c.Signing.PINPolicy.FirstPINActivation {
		warn("signing.pinPolicy.firstPINActivation is off: a citizen's bearer token alone sets the first PIN of a new signing credential; set true (the issuing officer hands the citizen an activation code)")
	}
}

// loopbackHost reports whether host (a name or an IP address, without
// brackets) is this host only: localhost, a loopback or the unspecified
// address.
func loopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && (a.Unmap().IsLoopback() || a.IsUnspecified())
}

// nonNetworkAddress reports whether host is an IP address of no network a
// responder sits on: link-local (the cloud metadata service 169.254.169.254
// among them), multicast or broadcast.
func nonNetworkAddress(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// dsnPasswordKeyword finds a password keyword in a PostgreSQL keyword/value
// DSN ("host=db user=thiqa password=…").
var dsnPasswordKeyword = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// dsnHasPassword reports whether a PostgreSQL DSN, a URL or keyword/value
// pairs, carries a password.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	return dsnPasswordKeyword.MatchString(dsn)
}

// metadataAddresses are the cloud metadata services that sit outside the
// link-local ranges: AWS's IPv6 endpoint and Alibaba Cloud's (in the
// shared address space, which private networks use too: only this exact
// address is named).
var metadataAddresses = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200")}

// metadataAddress reports whether host is one of metadataAddresses.
func metadataAddress(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, m := range metadataAddresses {
		if a == m {
			return true
		}
	}
	return false
}
