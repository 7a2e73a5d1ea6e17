package timestamp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// Clock sources of the TSA (tsa.clock.source). chrony and static are
// checked by this package (Config.NewClockChecker); kernel and
// static-out-of-sync by package timestamp/clock (FromConfig).
const (
	// ClockChrony asks `chronyc -c tracking` (production with chronyd).
	ClockChrony = "chrony"
	// ClockKernel reads the kernel's NTP state with adjtimex (any NTP daemon).
	ClockKernel = "kernel"
	// ClockStatic declares the clock in sync without checking anything:
	// DEVELOPMENT ONLY. `thiqa serve` logs a warning at start.
	ClockStatic = "static"
	// ClockStaticOutOfSync declares the clock out of sync: the TSA refuses
	// every request with timeNotAvailable (tests, maintenance).
	ClockStaticOutOfSync = "static-out-of-sync"
)

// ServiceConfig is the serialisable configuration of the time-stamping
// authority (thiqa.yaml's tsa section; RFC 3161, EN 319 421): the unit key
// on the token, its certificate from an issuing CA, renewal (a Service),
// and the token policy (Config, inline). An empty key means the data
// folder runs no TSA.
type ServiceConfig struct {
	// Key is the pkcs11: URI of the TSA unit key. Renewed keys are labelled
	// "<object>-<UTC time>" on the same token.
	Key string `yaml:"key"`
	// KeyType is the unit key's type: ec-p256 (default), ec-p384, rsa-2048,
	// rsa-3072 or rsa-4096.
	KeyType string `yaml:"keyType"`
	// CA is the issuing CA (a ca.issuers name) certifying the unit; default tsa.
	CA string `yaml:"ca"`
	// CertDir is the folder (relative to the data folder) holding unit.pem
	// (the unit certificate) and chain.pem (its issuing CA).
	CertDir string `yaml:"certDir"`
	// CommonName, Organization, OrganizationIdentifier and Country form the
	// unit certificate's subject. The defaults are PLACEHOLDERS.
	CommonName             string `yaml:"commonName"`
	Organization           string `yaml:"organization"`
	OrganizationIdentifier string `yaml:"organizationIdentifier"`
	Country                string `yaml:"country"`
	// RenewBefore is how long before the unit certificate's NotAfter a new
	// key and certificate replace it while serving ("30d" or a Go duration).
	// EN 319 421: a unit key never signs beyond its certificate's validity.
	RenewBefore string `yaml:"renewBefore"`
	// RenewCheckInterval is how often serve checks for renewal; default 1h.
	RenewCheckInterval time.Duration `yaml:"renewCheckInterval"`
	// SerialBlockSize is how many token serials one store round trip
	// reserves (default 1000); a crash skips the rest of a block.
	SerialBlockSize int64 `yaml:"serialBlockSize"`
	// Timestamp is the token policy: policy OID, accuracy, hashes, chain,
	// clock discipline (clock.source: chrony, kernel, static or
	// static-out-of-sync).
	Timestamp Config `yaml:",inline"`
}

// unitKeyTypes are the key types a TSA unit key may have.
var unitKeyTypes = []string{"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"}

// DefaultServiceConfig is the TSA of a local setup: a P-256 unit key on
// token "thiqa" certified by the tsa CA, ETSI best-practices policy,
// accuracy 1 s.
//
// The clock source is "static" (declared in sync, nothing checked) because a
// fresh development machine or container usually has no NTP daemon telling
// the kernel its clock is synchronised (adjtimex reports STA_UNSYNC), and the
// TSA would refuse every request. `thiqa serve` logs a WARN at start saying
// clock discipline is disabled. DEVELOPMENT ONLY: production sets
// clock.source to chrony (chronyd) or kernel (any NTP daemon).
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{
		Key:                    "pkcs11:token=thiqa;object=tsa-unit",
		KeyType:                "ec-p256",
		CA:                     policies.IssuerTSA,
		CertDir:                "tsa",
		CommonName:             "Thiqa TSA Unit 1 (PLACEHOLDER)",
		Organization:           "Thiqa Trust Services (PLACEHOLDER)",
		OrganizationIdentifier: "NTROM-0000000",
		Country:                "OM",
		RenewBefore:            "30d",
		RenewCheckInterval:     time.Hour,
		Timestamp: Config{
			Accuracy:     time.Second,
			IncludeChain: true,
			Clock:        ClockConfig{Source: ClockStatic},
		},
	}
}

// Enabled reports whether the data folder runs a TSA.
func (c ServiceConfig) Enabled() bool { return c.Key != "" }

// KeyTypeOrDefault returns the unit key type, ec-p256 when unset.
func (c ServiceConfig) KeyTypeOrDefault() string {
	if c.KeyType == "" {
		return "ec-p256"
	}
	return c.KeyType
}

// CAOrDefault returns the issuing CA's name, tsa when unset.
func (c ServiceConfig) CAOrDefault() string {
	if c.CA == "" {
		return policies.IssuerTSA
	}
	return c.CA
}

// RenewCheckEvery returns RenewCheckInterval, one hour when unset.
func (c ServiceConfig) RenewCheckEvery() time.Duration {
	if c.RenewCheckInterval <= 0 {
		return time.Hour
	}
	return c.RenewCheckInterval
}

// UnitSubject is the subject of the unit certificate (policies' field
// names), as a CA certifies it.
func (c ServiceConfig) UnitSubject() map[string]string {
	subject := map[string]string{
		policies.FieldCommonName:       c.CommonName,
		policies.FieldOrganizationName: c.Organization,
		policies.FieldCountry:          c.Country,
	}
	if c.OrganizationIdentifier != "" {
		subject[policies.FieldOrganizationIdentifier] = c.OrganizationIdentifier
	}
	return subject
}

// NewServiceFromConfig builds the TSA service of section c over o: the
// token policy (o.Config), a BlockAllocator of c's block size over
// serials (o.Serials) and the renewal margin (o.RenewBefore) come from c.
func NewServiceFromConfig(ctx context.Context, c ServiceConfig, serials SerialBlockStore, o ServiceOptions) (*Service, error) {
	alloc, err := NewBlockAllocator(serials, SerialCounter, c.SerialBlockSize)
	if err != nil {
		return nil, err
	}
	if o.RenewBefore, err = c.RenewBeforeDuration(); err != nil {
		return nil, err
	}
	o.Config, o.Serials = c.Timestamp, alloc
	s, err := NewService(ctx, o)
	if err != nil {
		alloc.Close()
		return nil, err
	}
	s.closeSerials = alloc.Close
	return s, nil
}

// RenewBeforeDuration returns RenewBefore parsed (30 days when unset).
func (c ServiceConfig) RenewBeforeDuration() (time.Duration, error) {
	if c.RenewBefore == "" {
		return 30 * 24 * time.Hour, nil
	}
	return policies.ParseValidity(c.RenewBefore)
}

// Validate checks the section; an empty one is valid (no TSA). isIssuer
// reports whether a name is an issuing CA of the deployment's running CA
// (the unit's CA must be).
func (c ServiceConfig) Validate(isIssuer func(name string) bool) error {
	if !c.Enabled() {
		return nil
	}
	var errs []string
	if !strings.HasPrefix(c.Key, "pkcs11:") {
		errs = append(errs, fmt.Sprintf("tsa.key: want a pkcs11: URI, got %q", c.Key))
	}
	if !slices.Contains(unitKeyTypes, c.KeyTypeOrDefault()) {
		errs = append(errs, fmt.Sprintf("tsa.keyType: want one of %s, got %q", strings.Join(unitKeyTypes, ", "), c.KeyType))
	}
	if !isIssuer(c.CAOrDefault()) {
		errs = append(errs, fmt.Sprintf("tsa.ca: %q is not an issuing CA of the ca section", c.CAOrDefault()))
	}
	if c.CertDir == "" {
		errs = append(errs, "tsa.certDir: must name a folder")
	}
	if c.CommonName == "" || c.Organization == "" || !policies.IsCountryCode(c.Country) {
		errs = append(errs, "tsa: commonName, organization and an ISO 3166 country are required")
	}
	if _, err := c.RenewBeforeDuration(); err != nil {
		errs = append(errs, fmt.Sprintf("tsa.renewBefore: %v", err))
	}
	if c.RenewCheckInterval < 0 {
		errs = append(errs, "tsa.renewCheckInterval: must not be negative")
	}
	if c.SerialBlockSize < 0 || c.SerialBlockSize > 1<<30 {
		errs = append(errs, fmt.Sprintf("tsa.serialBlockSize: %d out of range", c.SerialBlockSize))
	}
	// Config validates the policy and the clock settings; the sources it
	// does not know are checked here.
	ts := c.Timestamp
	switch ts.Clock.Source {
	case "", ClockChrony, ClockStatic:
	case ClockKernel, ClockStaticOutOfSync:
		ts.Clock.Source = ClockStatic
	default:
		errs = append(errs, fmt.Sprintf("tsa.clock.source: want chrony, kernel, static or static-out-of-sync, got %q", ts.Clock.Source))
		ts.Clock.Source = ClockStatic
	}
	if _, err := ts.NewClockChecker(); err != nil {
		errs = append(errs, "tsa: "+err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
