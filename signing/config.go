package signing

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// ServiceConfig is the serialisable configuration of the signing service
// (thiqa.yaml's signing section): e-seals for agencies and remote
// signatures for citizens. It applies when the ca section is enabled (the
// credentials are keys the CA certified on the token). Its Config method
// turns it, defaults filled, into a Config; NewFromConfig builds the
// service of it.
type ServiceConfig struct {
	// Disabled turns the signing service off.
	Disabled bool `yaml:"disabled,omitempty"`
	// TSAURL is the time-stamp authority used for B-T and above. Empty means
	// this deployment's own TSA (publicBaseURL + "/tsa"), called in process
	// when this server serves it.
	TSAURL string `yaml:"tsaURL,omitempty"`
	// Timeout bounds each call to the TSA and to the revocation services
	// (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxDocumentBytes bounds one PDF (default 1 GiB).
	MaxDocumentBytes int64 `yaml:"maxDocumentBytes"`
	// MaxBatchDocuments bounds the documents of one batch seal (default 100).
	MaxBatchDocuments int `yaml:"maxBatchDocuments"`
	// SADLifetime is how long signature activation data stays usable
	// (default 5m).
	SADLifetime time.Duration `yaml:"sadLifetime"`
	// MaxHashesPerSAD bounds numSignatures of one authorisation (default 100).
	MaxHashesPerSAD int `yaml:"maxHashesPerSAD"`
	// TempDir holds uploaded documents while they are signed, and a batch
	// seal's sealed documents until they are sent (default: the system's
	// temporary folder; relative to the data folder).
	TempDir string `yaml:"tempDir,omitempty"`
	// PINMemoryKiB is argon2id's memory per PIN hash in KiB (default 19456).
	PINMemoryKiB uint32 `yaml:"pinMemoryKiB"`
	// PINTime is argon2id's number of passes (default 2).
	PINTime uint32 `yaml:"pinTime"`
	// PINPolicy is the policy of signing PINs and their activation codes.
	PINPolicy PINPolicy `yaml:"pinPolicy"`
	// Fonts are the TrueType fonts visible signatures are drawn with: the
	// first for every character it has, the others as fallbacks (default:
	// DefaultFonts that exist on this machine; relative to the data folder).
	Fonts []string `yaml:"fonts,omitempty"`
	// TimeZone is the IANA zone visible signatures show the signing time
	// in (default: the server's local zone).
	TimeZone string `yaml:"timeZone,omitempty"`
}

// PINPolicy is signing.pinPolicy: the policy of the citizens' signing PINs
// and their activation codes (pin.PolicyConfig, whose keys it shares with
// identity.pinPolicy), and whether the first PIN of a new credential needs
// an activation code.
type PINPolicy struct {
	pin.PolicyConfig `yaml:",inline"`
	// FirstPINActivation makes the first PIN of a citizen's signing
	// credential need a one-time activation code, as a PIN after a reset
	// does: a keyInHSM issuance answers the code to the officer, and
	// POST /api/v1/credentials/{id}/pin (the bearer token alone) is
	// refused for a credential without a PIN (default false).
	FirstPINActivation bool `yaml:"firstPINActivation,omitempty"`
}

// DefaultFonts are the fonts of visible signatures when signing.fonts is
// not set, those of them that are installed: DejaVu Sans (Latin, Arabic;
// Debian's fonts-dejavu-core), then Noto Naskh Arabic and Noto Sans
// (fonts-noto-core) as fallbacks.
var DefaultFonts = []string{
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
	"/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf",
	"/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
}

// maxDocumentBytes bounds signing.maxDocumentBytes: far above any PDF, and
// far enough below the int64 maximum that the request bounds built on it
// (a visible signature's image and the multipart framing added) cannot
// wrap around.
const maxDocumentBytes = 1 << 40

// DefaultServiceConfig returns the signing settings of a local setup.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{
		Timeout: 10 * time.Second, MaxDocumentBytes: 1 << 30, MaxBatchDocuments: 100,
		SADLifetime: 5 * time.Minute, MaxHashesPerSAD: 100, PINMemoryKiB: 19 * 1024, PINTime: 2, PINPolicy: PINPolicy{PolicyConfig: pin.DefaultPolicy()},
	}
}

// Enabler says whether a part of the deployment runs: the ca section,
// without which there is nothing to sign with.
type Enabler interface {
	Enabled() bool
}

// Enabled reports whether the signing service runs (it needs the CA).
func (c ServiceConfig) Enabled(ca Enabler) bool { return !c.Disabled && ca.Enabled() }

// TSAURLOrDefault returns the TSA URL used for B-T and above.
func (c ServiceConfig) TSAURLOrDefault(publicBaseURL string) string {
	if c.TSAURL != "" {
		return c.TSAURL
	}
	return publicBaseURL + "/tsa"
}

// WithDefaults returns c with every zero field set to its default, so that
// a configuration written before the signing section existed still works.
func (c ServiceConfig) WithDefaults() ServiceConfig {
	d := DefaultServiceConfig()
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.MaxDocumentBytes = cmp.Or(c.MaxDocumentBytes, d.MaxDocumentBytes)
	c.MaxBatchDocuments = cmp.Or(c.MaxBatchDocuments, d.MaxBatchDocuments)
	c.SADLifetime = cmp.Or(c.SADLifetime, d.SADLifetime)
	c.MaxHashesPerSAD = cmp.Or(c.MaxHashesPerSAD, d.MaxHashesPerSAD)
	c.PINMemoryKiB = cmp.Or(c.PINMemoryKiB, d.PINMemoryKiB)
	c.PINTime = cmp.Or(c.PINTime, d.PINTime)
	return c
}

// Validate checks the signing section (zero values stand for defaults).
func (c ServiceConfig) Validate() error {
	c = c.WithDefaults()
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, "signing."+key+": "+fmt.Sprintf(format, args...))
	}
	if c.TSAURL != "" {
		if u, err := url.Parse(c.TSAURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tsaURL", "want an absolute http(s) URL, got %q", c.TSAURL)
		}
	}
	if c.Timeout <= 0 || c.Timeout > 5*time.Minute {
		bad("timeout", "want a duration above 0 and at most 5m, got %s", c.Timeout)
	}
	if c.MaxDocumentBytes < 1024 {
		bad("maxDocumentBytes", "must be at least 1024, got %d", c.MaxDocumentBytes)
	} else if c.MaxDocumentBytes > maxDocumentBytes {
		bad("maxDocumentBytes", "must be at most %d (1 TiB), got %d", int64(maxDocumentBytes), c.MaxDocumentBytes)
	}
	if c.MaxBatchDocuments < 1 || c.MaxBatchDocuments > 10000 {
		bad("maxBatchDocuments", "want 1 to 10000, got %d", c.MaxBatchDocuments)
	}
	if c.SADLifetime < 10*time.Second || c.SADLifetime > time.Hour {
		bad("sadLifetime", "want 10s to 1h, got %s", c.SADLifetime)
	}
	if c.MaxHashesPerSAD < 1 || c.MaxHashesPerSAD > 1000 {
		bad("maxHashesPerSAD", "want 1 to 1000, got %d", c.MaxHashesPerSAD)
	}
	if c.PINMemoryKiB < 8*1024 || c.PINMemoryKiB > 1<<20 {
		bad("pinMemoryKiB", "want 8192 to 1048576, got %d", c.PINMemoryKiB)
	}
	if c.PINTime < 1 || c.PINTime > 16 {
		bad("pinTime", "want 1 to 16, got %d", c.PINTime)
	}
	if err := c.PINPolicy.Validate("signing.pinPolicy"); err != nil {
		errs = append(errs, err.Error())
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			bad("timeZone", "want an IANA time zone such as Asia/Muscat, got %q", c.TimeZone)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
