package tsl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of the trusted lists a relying party loads.
const (
	// DefaultCacheDir keeps fetched trusted lists (relative to the data
	// folder).
	DefaultCacheDir = "tsl/cache"
	// DefaultRefresh is how often `thiqa serve` reloads them.
	DefaultRefresh = 6 * time.Hour
)

// SourceConfig is one serialisable trusted list the verifier uses (an
// entry of thiqa.yaml's verify.trustedLists): a file or a URL (one of
// them), the PEM files of the certificates allowed to sign it, and for a
// list of lists the territories to follow (all when empty). It becomes a
// Source once the signer files are read.
type SourceConfig struct {
	// File is the list's file name, URL its http(s) URL: one of them.
	File string `yaml:"file,omitempty"`
	URL  string `yaml:"url,omitempty"`
	// Signers are PEM files of the certificates allowed to sign the list.
	Signers []string `yaml:"signers"`
	// Territories restricts the lists a list of lists points to.
	Territories []string `yaml:"territories,omitempty"`
}

// Location is the list's file or URL.
func (t SourceConfig) Location() string {
	if t.URL != "" {
		return t.URL
	}
	return t.File
}

// Validate checks the entry; key is where it sits in the configuration
// (verify.trustedLists[0]), which every problem names.
func (t SourceConfig) Validate(key string) error {
	var errs []string
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
		if !IsTerritory(ter) && ter != "EU" {
			errs = append(errs, fmt.Sprintf("%s.territories: %q is not a territory code", key, ter))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// IsTerritory reports whether s has the form of a country's scheme
// territory: two capital letters (ISO 3166-1 alpha-2).
func IsTerritory(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
