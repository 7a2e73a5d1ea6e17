package main

// Wiring of the signing service (package signing) and its CSC API
// (signing/csc): the service is built from its section
// (signing.NewFromConfig) over the store, the credentials' keys on the
// token, the CA certificates, the HTTP client of its TSA and revocation
// fetches, the verifier, the audit log and the metrics registry; its
// routes go on the mux behind authentication.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/inprocess"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/serve"
	"github.com/thiqa/thiqa/policies"
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

// newSigningService builds the signing service of the signing section
// (signing.NewFromConfig). transport, when set, carries the calls to this
// deployment's own TSA, OCSP responder and CRLs (in process when serving);
// nil uses the network. own, when set, is this server's own TSA, called in
// process when signing.tsaURL names it.
func newSigningService(ctx context.Context, p *platform, reg prometheus.Registerer, transport http.RoundTripper, own *timestamp.Service) (*signing.Service, error) {
	parts, err := findHierarchy(ctx, p.cfg, p.token)
	if err != nil {
		return nil, err
	}
	var cas []signing.IssuingCA // the root first
	for _, c := range parts {
		if c.Cert == nil {
			return nil, fmt.Errorf("CA %s has no certificate: run `thiqa init --data %s`", c.Conf.Name, p.cfg.Dir())
		}
		cas = append(cas, signing.IssuingCA{Name: c.Conf.Name, Cert: c.Cert})
	}
	timeout := p.cfg.Signing.WithDefaults().Timeout
	client := &http.Client{Transport: transport, Timeout: timeout}
	var mobile signing.MobileIDs
	var mobilePINs *pin.Manager
	if identityOn(p.cfg) { // the mobile IDs' login PINs share the credential endpoints
		if mobilePINs, err = p.cfg.Identity.PINs(p.db.Identity()); err != nil {
			return nil, err
		}
		mobile = p.db.SigningMobileIDs()
	}
	// Extensions are judged first by the verifier, trusting this
	// deployment's anchors, fetching revocation online (own URLs in process).
	anchors, err := deploymentAnchors(p.cfg)
	if err != nil {
		return nil, err
	}
	judge := verify.New(verify.Options{TrustAnchors: anchors, AllowOnline: true, FetchTimeout: timeout,
		Fetcher: &verify.HTTPFetcher{Client: client, TTL: 5 * time.Minute}, Logger: p.logger.With("service", "signing")})
	return signing.NewFromConfig(p.cfg.Signing,
		signing.Deployment{PublicBaseURL: p.cfg.PublicBaseURL, Resolve: p.cfg.Resolve, HTTPClient: client, OwnTSA: own, Requester: inProcessRequester},
		signing.Options{
			Store: p.db.SigningCredentials(), Keys: keyring.ProfileKeys(p.token, policies.ProfileOrganisationSeal),
			Root: cas[0].Cert, Issuers: cas[1:], Audit: p.audit, Logger: p.logger.With("service", "signing"), Registerer: reg,
			Verifier: judge, MobileIDs: mobile, MobilePINs: mobilePINs, Country: p.cfg.CA.Country(),
			// A credential whose issuing CA the root CRL revokes signs
			// nothing: the root CRL this node applied last says, as for
			// the TSA (wireRootCRL, openAuthority).
			IssuerRevocations: p.revokedCAs,
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
	// Calls to this server's own URLs take the routes `thiqa serve` takes:
	// the raw prefixes (POST /tsa, GET /ocsp/…) first, then the mux.
	ownURLs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve.RawPrefixes(sv.raw, sv.mux).ServeHTTP(w, r) })
	s, err := newSigningService(ctx, p, p.reg, &inprocess.Transport{Host: base.Host, Handler: ownURLs, Next: http.DefaultTransport}, sv.tsa)
	if err != nil {
		return err
	}
	s.Register(sv.mux, p.authn.Require)
	sv.csc = csc.New(s)
	if cscOAuthOn(p.cfg) {
		sv.csc.WithOAuth2(p.cfg.Identity.CSCOAuthBase(p.cfg.PublicBaseURL))
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
