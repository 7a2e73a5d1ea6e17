package revocation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/policies"
)

// Config is the serialisable revocation configuration (thiqa.yaml's
// revocation section): the CRLs of every CA, the OCSP responder and how a
// server learns of revocations made by other processes. It applies when
// the ca section is enabled; Settings validates it.
type Config struct {
	// CRL configures CRL generation and publication. Its baseURL is always
	// publicBaseURL (the URL the CA writes into certificates) and may be
	// left empty. partitions (1 to 1024) applies to each issuing CA: with
	// more than one, a certificate names its partition's CRL,
	// BASE/crl/{ca}-{n}.crl, and BASE/crl/{ca}.crl stays published for the
	// certificates issued before; the root's CRL is never partitioned.
	// deltas: true adds a delta CRL per partition (not for the root).
	CRL crl.Config `yaml:"crl"`
	// OCSP configures the responder.
	OCSP ocsp.Config `yaml:"ocsp"`
	// ResponderKeyType is the key type of the delegated OCSP responder keys
	// generated on the token: ec-p256 (default), ec-p384, rsa-2048, rsa-3072.
	ResponderKeyType string `yaml:"responderKeyType"`
	// PollEvery is how often a server looks for revocations recorded by
	// other processes (`thiqa revoke`, other instances) to re-sign their
	// OCSP responses and regenerate CRLs (default 2s).
	PollEvery time.Duration `yaml:"pollEvery"`
}

// DefaultConfig returns the revocation settings of a local setup: daily
// CRLs regenerated hourly and seconds after a revocation, OCSP responses
// valid one day, pre-signed for SHA-1 and SHA-256 CertIDs, HTTP caches
// bounded to five minutes.
func DefaultConfig() Config {
	return Config{
		CRL: crl.Config{
			Validity: 24 * time.Hour, RegenerateEvery: time.Hour, TriggerDelay: 2 * time.Second,
			Partitions: 1, MaxEntriesPerPartition: 100_000, MaxAge: 5 * time.Minute,
		},
		OCSP: ocsp.Config{
			Validity: 24 * time.Hour, RefreshEvery: 12 * time.Hour, RenewBefore: 48 * time.Hour, MaxAge: 5 * time.Minute,
			PresignHashes: []string{"sha1", "sha256"},
		},
		ResponderKeyType: "ec-p256",
		PollEvery:        2 * time.Second,
	}
}

var responderKeyTypes = []string{"ec-p256", "ec-p384", "rsa-2048", "rsa-3072"}

// Settings is a validated Config.
type Settings struct {
	// CRL and OCSP are the validated CRL and OCSP settings.
	CRL  crl.Settings
	OCSP ocsp.Settings
	// ResponderKeyType is the delegated responders' key type.
	ResponderKeyType string
	// PollEvery is how often revocations of other processes are looked for.
	PollEvery time.Duration
}

// Settings validates the section against the public base URL and fills
// defaults.
func (c Config) Settings(publicBaseURL string) (Settings, error) {
	cc := c.CRL
	if cc.BaseURL != "" && strings.TrimRight(cc.BaseURL, "/") != publicBaseURL {
		return Settings{}, fmt.Errorf("revocation.crl.baseURL: must be empty or equal publicBaseURL %q (certificates name CRLs there)", publicBaseURL)
	}
	cc.BaseURL = publicBaseURL
	cs, err := cc.Validate()
	if err != nil {
		return Settings{}, fmt.Errorf("revocation.crl: %w", err)
	}
	ocspSet, err := c.OCSP.Validate()
	if err != nil {
		return Settings{}, fmt.Errorf("revocation.ocsp: %w", err)
	}
	if err := checkRenewBefore(ocspSet.RenewBefore); err != nil {
		return Settings{}, err
	}
	s := Settings{CRL: cs, OCSP: ocspSet, ResponderKeyType: c.ResponderKeyType, PollEvery: c.PollEvery}
	if s.ResponderKeyType == "" {
		s.ResponderKeyType = "ec-p256"
	}
	if !slices.Contains(responderKeyTypes, s.ResponderKeyType) {
		return Settings{}, fmt.Errorf("revocation.responderKeyType: want one of %s, got %q", strings.Join(responderKeyTypes, ", "), s.ResponderKeyType)
	}
	if s.PollEvery == 0 {
		s.PollEvery = 2 * time.Second
	}
	if s.PollEvery < 100*time.Millisecond || s.PollEvery > 5*time.Minute {
		return Settings{}, fmt.Errorf("revocation.pollEvery: %s outside [100ms, 5m]", s.PollEvery)
	}
	return s, nil
}

// minResponderUse is how long a new responder certificate is used at least
// before it is due for renewal.
const minResponderUse = time.Hour

// checkRenewBefore refuses an OCSP renewal margin (renewBefore, or its
// default of twice the validity) that leaves a new responder certificate
// of the ocsp-responder profile less than minResponderUse in use: the
// responder would generate a key and have a certificate issued at every
// renewal check (once a minute).
func checkRenewBefore(renewBefore time.Duration) error {
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		return fmt.Errorf("revocation.ocsp: the responder profile: %w", err)
	}
	p, err := profiles.Get(policies.ProfileOCSPResponder)
	if err != nil {
		return fmt.Errorf("revocation.ocsp: %w", err)
	}
	if most := p.Validity - minResponderUse; renewBefore > most {
		return fmt.Errorf("revocation.ocsp.renewBefore: %s (twice the validity when unset) leaves the %s responder certificates "+
			"less than %s in use: a new responder key would be made at every renewal check; want at most %s (and a validity no longer)",
			renewBefore, p.Validity, minResponderUse, most)
	}
	return nil
}

// Validate checks the section when a CA runs (caEnabled).
func (c Config) Validate(publicBaseURL string, caEnabled bool) error {
	if !caEnabled {
		return nil
	}
	_, err := c.Settings(publicBaseURL)
	return err
}
