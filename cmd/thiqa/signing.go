package main

// Wiring of the signing service (package signing) and its CSC API
// (signing/csc): the service gets the store, the credentials' keys on the
// token, the time-stamp client and the revocation source of the signer,
// the audit log and the metrics registry; its routes go on the mux behind
// authentication.

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/inprocess"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/verify"
)

// inProcessRequester is the requester the TSA records for the signing
// service's own time-stamps: what auth.Requester names a request that came
// through inprocess.Transport (no credentials, remote address "in-process"),
// so the token records read as they did when the call went over HTTP.
const inProcessRequester = "addr:in-process"

// newSigningService builds the signing service. transport, when set,
// carries the calls to this deployment's own TSA, OCSP responder and CRLs
// (in process when serving); nil uses the network. own, when set, is this
// server's own TSA called in process, used when signing.tsaURL names it.
func newSigningService(ctx context.Context, p *platform, reg prometheus.Registerer, transport http.RoundTripper, own *timestamp.InProcessClient) (*signing.Service, error) {
	cfg := p.cfg.Signing.WithDefaults()
	parts, err := findHierarchy(ctx, p.cfg, p.token)
	if err != nil {
		return nil, err
	}
	var cas []*x509.Certificate
	var issuers []signing.IssuingCA
	for i, c := range parts {
		if c.Cert == nil {
			return nil, fmt.Errorf("CA %s has no certificate: run `thiqa init --data %s`", c.Conf.Name, p.cfg.Dir())
		}
		cas = append(cas, c.Cert)
		if i > 0 {
			issuers = append(issuers, signing.IssuingCA{Name: c.Conf.Name, Cert: c.Cert})
		}
	}
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}
	var tsa signer.TimestampClient
	if tsa, err = timestamp.NewClient(cfg.TSAURLOrDefault(p.cfg.PublicBaseURL), timestamp.ClientOptions{HTTPClient: client, Timeout: cfg.Timeout}); err != nil {
		return nil, fmt.Errorf("signing.tsaURL: %w", err)
	}
	if own != nil {
		tsa = own
	}
	pp := cfg.PINPolicy.Apply(pin.DefaultParams())
	pp.MemoryKiB, pp.Time = cfg.PINMemoryKiB, cfg.PINTime
	var mobile signing.MobileIDs
	var mobilePINs *pin.Manager
	if identityOn(p.cfg) { // the mobile IDs' login PINs share the credential endpoints
		if mobilePINs, err = pin.New(p.db.Identity(), p.cfg.Identity.PINParams()); err != nil {
			return nil, err
		}
		mobile = p.db.SigningMobileIDs()
	}
	fonts := make([]string, len(cfg.Fonts)) // relative to the data folder
	for i, f := range cfg.Fonts {
		fonts[i] = p.cfg.Resolve(f)
	}
	appearance, err := signing.LoadAppearance(fonts, config.DefaultFonts, cfg.TimeZone, strings.TrimRight(p.cfg.PublicBaseURL, "/")+"/verify", p.logger)
	if err != nil {
		return nil, err
	}
	// Extensions are judged first by the verifier, trusting this
	// deployment's anchors, fetching revocation online (own URLs in process).
	anchors, err := deploymentAnchors(p.cfg)
	if err != nil {
		return nil, err
	}
	judge := verify.New(verify.Options{TrustAnchors: anchors, AllowOnline: true, FetchTimeout: cfg.Timeout,
		Fetcher: &verify.HTTPFetcher{Client: client, TTL: 5 * time.Minute}, Logger: p.logger.With("service", "signing")})
	return signing.New(signing.Options{
		Config: signing.Config{
			Timeout: cfg.Timeout, MaxDocumentBytes: cfg.MaxDocumentBytes, MaxBatchDocuments: cfg.MaxBatchDocuments,
			SADLifetime: cfg.SADLifetime, MaxHashesPerSAD: cfg.MaxHashesPerSAD, TempDir: p.cfg.Resolve(cfg.TempDir), PIN: pp,
			Appearance: appearance,
		},
		Store: p.db.SigningCredentials(), Keys: keyring.ProfileKeys(p.token, policies.ProfileOrganisationSeal),
		Root: parts[0].Cert, Issuers: issuers,
		TSA: tsa, Revocation: signing.NewRevocationFetcher(client, cas, time.Now),
		Audit: p.audit, Logger: p.logger.With("service", "signing"), Registerer: reg, Verifier: judge,
		MobileIDs: mobile, MobilePINs: mobilePINs,
	})
}

// wireSigning serves the seal, sign and CSC endpoints and expires the SADs
// in the background.
func wireSigning(ctx context.Context, p *platform, sv *serving) error {
	if !p.cfg.Signing.Enabled(p.cfg.CA) {
		return nil
	}
	base, err := url.Parse(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	// The signature time-stamps of B-T and above: this server's own TSA in
	// process when signing.tsaURL names it, else over HTTP.
	own := timestamp.OwnClient(sv.tsa, p.cfg.PublicBaseURL, p.cfg.Signing.WithDefaults().TSAURLOrDefault(p.cfg.PublicBaseURL), inProcessRequester)
	// Calls to this server's own URLs take the routes `thiqa serve` takes:
	// the raw prefixes (POST /tsa, GET /ocsp/…) first, then the mux.
	ownURLs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rawPrefixes(sv.raw, sv.mux).ServeHTTP(w, r) })
	s, err := newSigningService(ctx, p, p.reg, &inprocess.Transport{Host: base.Host, Handler: ownURLs, Next: http.DefaultTransport}, own)
	if err != nil {
		return err
	}
	s.Logger().Debug("signature time-stamps", "inProcess", own != nil)
	s.Register(sv.mux, p.authn.Require)
	sv.csc = csc.New(s)
	if cscOAuthOn(p.cfg) {
		sv.csc.WithOAuth2(cscOAuthBase(p.cfg))
	}
	sv.csc.Register(sv.mux, p.authn.Require)
	sv.signing = s
	sv.background = append(sv.background, s.ExpireSADs)
	return nil
}

// initSigning registers the signing credentials issued so far (idempotent).
func initSigning(ctx context.Context, p *platform, _ io.Writer) error {
	if !p.cfg.Signing.Enabled(p.cfg.CA) {
		return nil
	}
	s, err := newSigningService(ctx, p, nil, nil, nil)
	if err != nil {
		return err
	}
	return s.SyncCredentials(ctx)
}
