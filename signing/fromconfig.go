package signing

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/timestamp"
)

// Deployment is where a service built from its section (NewFromConfig)
// runs: what the section's settings are relative to.
type Deployment struct {
	// PublicBaseURL is the deployment's URL: its own TSA (publicBaseURL +
	// "/tsa", when signing.tsaURL is empty) and its verification page (the
	// QR code of visible signatures, publicBaseURL + "/verify") hang below it.
	PublicBaseURL string
	// Resolve makes the section's relative paths (tempDir, fonts)
	// absolute: relative to the data folder.
	Resolve func(path string) string
	// HTTPClient carries the calls to the TSA and to the revocation
	// services (its transport may answer the deployment's own URLs in
	// process).
	HTTPClient *http.Client
	// OwnTSA, when set, is this server's own TSA: the signature time-stamps
	// come from it in process, recorded as requested by Requester, when
	// signing.tsaURL names it (timestamp.OwnClient).
	OwnTSA    *timestamp.Service
	Requester string
}

// Config returns the service's Config for section c, defaults filled: the
// bounds, the PIN cost and policy, the temporary folder and the fonts
// resolved by resolve, and the visible signatures' appearance
// (LoadAppearance: DefaultFonts when c names none; the QR code points to
// publicBaseURL's /verify). logger (nil: none) hears when no font is found.
func (c ServiceConfig) Config(resolve func(string) string, publicBaseURL string, logger *slog.Logger) (Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c = c.WithDefaults()
	pp := c.PINPolicy.Apply(pin.DefaultParams())
	pp.MemoryKiB, pp.Time = c.PINMemoryKiB, c.PINTime
	fonts := make([]string, len(c.Fonts))
	for i, f := range c.Fonts {
		fonts[i] = resolve(f)
	}
	appearance, err := LoadAppearance(fonts, DefaultFonts, c.TimeZone, strings.TrimRight(publicBaseURL, "/")+"/verify", logger)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Timeout: c.Timeout, MaxDocumentBytes: c.MaxDocumentBytes, MaxBatchDocuments: c.MaxBatchDocuments,
		SADLifetime: c.SADLifetime, MaxHashesPerSAD: c.MaxHashesPerSAD, TempDir: resolve(c.TempDir), PIN: pp,
		FirstPINActivation: c.PINPolicy.FirstPINActivation, Appearance: appearance,
	}, nil
}

// NewFromConfig builds the service of section c in deployment d over o:
// o.Config comes from c (ServiceConfig.Config), o.TSA is d's own TSA in
// process when signing.tsaURL names it and an HTTP client of tsaURL
// otherwise, and o.Revocation fetches over d.HTTPClient, knowing the CRL
// distribution points of o.Root and o.Issuers.
func NewFromConfig(c ServiceConfig, d Deployment, o Options) (*Service, error) {
	var err error
	if o.Config, err = c.Config(d.Resolve, d.PublicBaseURL, o.Logger); err != nil {
		return nil, err
	}
	tsaURL := c.TSAURLOrDefault(d.PublicBaseURL)
	if own := timestamp.OwnClient(d.OwnTSA, d.PublicBaseURL, tsaURL, d.Requester); own != nil {
		o.TSA = own
	} else if o.TSA, err = timestamp.NewClient(tsaURL, timestamp.ClientOptions{HTTPClient: d.HTTPClient, Timeout: o.Config.Timeout}); err != nil {
		return nil, fmt.Errorf("signing.tsaURL: %w", err)
	}
	cas := []*x509.Certificate{o.Root}
	for _, is := range o.Issuers {
		cas = append(cas, is.Cert)
	}
	o.Revocation = NewRevocationFetcher(d.HTTPClient, cas, time.Now)
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	_, inProcess := o.TSA.(*timestamp.InProcessClient)
	s.Logger().Debug("signature time-stamps", "inProcess", inProcess)
	return s, nil
}
