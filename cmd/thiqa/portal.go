package main

// Wiring of the people's pages (web/portal): the front page, the citizen
// portal and the officer console call the server's own routes in process;
// the citizen portal is a first-party OpenID Connect client of the
// deployment's digital ID, registered here with a key on the token.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/thiqa/thiqa/api"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/serve"
	webportal "github.com/thiqa/thiqa/web/portal"
)

// portalClientKey is the label of the portal's client-assertion key.
const portalClientKey = "portal-oidc-client"

// wirePortal serves /, /my/… and /ra/…, and the page a browser gets for a
// path nothing serves, and sweeps the portal's expired sessions every
// minute in the background.
func wirePortal(ctx context.Context, p *platform, s *serving) error {
	cfg := p.cfg
	base := strings.TrimSuffix(cfg.PublicBaseURL, "/")
	links := webportal.Links{PublicBaseURL: base, OpenAPI: api.Path, Ready: "/readyz"}
	if !cfg.Verify.WithDefaults().Disabled {
		links.Verify = "/verify"
	}
	if cfg.CA.Enabled() {
		links.OCSP = "/ocsp"
		names := append([]string{cfg.CA.Root.Name}, cfg.CA.IssuerNames()...)
		for _, c := range names {
			links.CACertificates = append(links.CACertificates, webportal.Link{Label: c + ".crt", Path: "/certs/" + c + ".crt"})
			links.CRLs = append(links.CRLs, webportal.Link{Label: c + ".crl", Path: "/crl/" + c + ".crl"})
		}
	}
	if _, ok := s.raw["/tsa"]; ok {
		links.TSA = "/tsa"
	}
	var oc *webportal.OIDCClient
	if identityOn(cfg) {
		links.Discovery = identity.PathDiscovery
		c, err := portalClient(ctx, p)
		if err != nil {
			p.logger.Warn("the citizen portal cannot sign citizens in with the digital ID", "err", err)
		} else {
			oc = c
		}
	}
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve.RawPrefixes(s.raw, s.mux).ServeHTTP(w, r) })
	pt, err := webportal.New(webportal.Options{
		API: own, Authenticate: p.authn.Authenticate, Recheck: p.authn.Recheck, OIDC: oc, Audit: p.audit,
		Logger: p.logger.With("service", "portal"), Secure: portalSecure(cfg.TLS != nil, cfg.PublicBaseURL), Links: links,
		Country: cfg.CA.Country(),
	})
	if err != nil {
		return err
	}
	pt.Register(s.mux)
	s.mux.SetErrorPages(pt) // a browser's 404 and 405 outside the protocols: a page, not plain text
	s.background = append(s.background, func(ctx context.Context) { pt.SweepSessions(ctx, time.Minute) })
	return nil
}

// portalSecure reports whether the portal's cookies are Secure (and its
// session cookie __Host-): when the server speaks TLS itself, and when
// browsers reach it over https through a load balancer that ends TLS
// (publicBaseURL, where the portal's redirect URI points, is https).
// Otherwise a browser led to the plain-http address of the same host
// would send the session cookie in the clear.
func portalSecure(tlsOn bool, publicBaseURL string) bool {
	return tlsOn || strings.HasPrefix(strings.ToLower(publicBaseURL), "https://")
}

// portalClient finds (or makes) the portal's client key on the token and
// registers the portal as a client of the digital ID
// (identity.RegisterPortal) with the redirect URI under publicBaseURL.
func portalClient(ctx context.Context, p *platform) (*webportal.OIDCClient, error) {
	cfg := p.cfg
	key, err := ensureServiceKey(ctx, p, "pkcs11:token="+cfg.HSM.TokenLabel+";object="+portalClientKey, hsm.ECP256)
	if err != nil {
		return nil, fmt.Errorf("the portal's client key: %w", err)
	}
	redirect := strings.TrimSuffix(cfg.PublicBaseURL, "/") + "/my/callback"
	id, js, err := identity.RegisterPortal(ctx, p.db.Identity(), p.audit, key, redirect, "thiqa-serve")
	if err != nil {
		return nil, err
	}
	return &webportal.OIDCClient{Issuer: cfg.Identity.IssuerOr(cfg.PublicBaseURL), ClientID: id, RedirectURI: redirect, Key: js}, nil
}
