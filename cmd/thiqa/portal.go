package main

// Wiring of the people's pages (web/portal): the front page, the citizen
// portal and the officer console call the server's own routes in process;
// the citizen portal is a first-party OpenID Connect client of the
// deployment's digital ID, registered here with a key on the token.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
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
	issuer := ""
	if identityOn(cfg) {
		issuer = cfg.Identity.IssuerOr(cfg.PublicBaseURL)
	}
	origin, moved := portalOrigin(cfg.PublicBaseURL, issuer)
	var redirectHosts []string
	if moved {
		// publicBaseURL's host stays for CRLs, OCSP, certificates and the
		// TSA; a browser that opens /my/ or /ra/ there is sent to the
		// portal's origin before a session starts. On the same host name
		// (http and https of one name) the Host header cannot tell them
		// apart: the load balancer's redirect from http to https does.
		if h := publicHost(cfg.PublicBaseURL); !sameHostName(h, origin) {
			redirectHosts = []string{h}
		}
		p.logger.Info("the citizen portal and the officer console live on the digital ID's https origin", "origin", origin, "publicBaseURL", cfg.PublicBaseURL)
	}
	var oc *webportal.OIDCClient
	if identityOn(cfg) {
		links.Discovery = identity.PathDiscovery
		c, err := portalClient(ctx, p, origin)
		if err != nil {
			p.logger.Warn("the citizen portal cannot sign citizens in with the digital ID", "err", err)
		} else {
			oc = c
		}
	}
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve.RawPrefixes(s.raw, s.mux).ServeHTTP(w, r) })
	pt, err := webportal.New(webportal.Options{
		API: own, Authenticate: p.authn.Authenticate, Recheck: p.authn.Recheck, OIDC: oc, Audit: p.audit,
		Logger: p.logger.With("service", "portal"), Secure: portalSecure(cfg.TLS != nil, origin), Links: links,
		Country: cfg.CA.Country(), Origin: pageOrigin(moved, origin), RedirectHosts: redirectHosts,
	})
	if err != nil {
		return err
	}
	pt.Register(s.mux)
	s.mux.SetErrorPages(pt) // a browser's 404 and 405 outside the protocols: a page, not plain text
	s.background = append(s.background, func(ctx context.Context) { pt.SweepSessions(ctx, time.Minute) })
	return nil
}

// portalOrigin returns where browsers reach the citizen portal and the
// officer console, the base of the portal's OIDC redirect URI: publicBaseURL,
// unless publicBaseURL is plain http on a host other than this machine's
// (production, where it stays http for the CRLs and OCSP in certificates)
// while the digital ID's issuer is https (the production table's
// identity.issuer): then the issuer's origin, scheme://host[:port], and
// moved is true. An issuer's path is left out: the pages' paths, and the
// __Host- session cookie (Path=/), sit at the root of their origin. With
// publicBaseURL already https, or on a loopback host (make run), or with
// no https issuer (issuer is empty when the digital ID is off), nothing
// moves.
func portalOrigin(publicBaseURL, issuer string) (origin string, moved bool) {
	base := strings.TrimSuffix(publicBaseURL, "/")
	pub, err := url.Parse(base)
	if err != nil || !strings.EqualFold(pub.Scheme, "http") || loopbackHost(pub.Hostname()) {
		return base, false
	}
	iss, err := url.Parse(issuer)
	if issuer == "" || err != nil || !strings.EqualFold(iss.Scheme, "https") || iss.Host == "" {
		return base, false
	}
	return "https://" + strings.ToLower(iss.Host), true
}

// pageOrigin is the portal's Options.Origin: the origin when the pages
// moved there, none otherwise (they answer on whatever host, as always).
func pageOrigin(moved bool, origin string) string {
	if moved {
		return origin
	}
	return ""
}

// publicHost is the host[:port] of publicBaseURL, as a Host header names it.
func publicHost(publicBaseURL string) string {
	u, err := url.Parse(publicBaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// sameHostName reports whether host (host[:port]) and origin's host have
// the same name, whatever their ports.
func sameHostName(host, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	return strings.EqualFold(strings.TrimSuffix(strings.Trim(name, "[]"), "."), strings.TrimSuffix(u.Hostname(), "."))
}

// loopbackHost reports whether host (a name or an IP address) is this
// machine only: localhost or a loopback address.
func loopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// portalSecure reports whether the portal's cookies are Secure (and its
// session cookie __Host-): when the server speaks TLS itself, and when
// browsers reach the portal over https through a load balancer that ends
// TLS (its origin, where the portal's redirect URI points, is https:
// publicBaseURL, or the digital ID's https origin, portalOrigin).
// Otherwise a browser led to the plain-http address of the same host
// would send the session cookie in the clear.
func portalSecure(tlsOn bool, origin string) bool {
	return tlsOn || strings.HasPrefix(strings.ToLower(origin), "https://")
}

// portalClient finds (or makes) the portal's client key on the token and
// registers the portal as a client of the digital ID
// (identity.RegisterPortal) with the redirect URI under origin
// (portalOrigin). A new redirect URI registers a new client, recorded in
// the audit log as every registration (oidc.client.add); the client of
// the old one stays registered, unused.
func portalClient(ctx context.Context, p *platform, origin string) (*webportal.OIDCClient, error) {
	cfg := p.cfg
	key, err := ensureServiceKey(ctx, p, "pkcs11:token="+cfg.HSM.TokenLabel+";object="+portalClientKey, hsm.ECP256)
	if err != nil {
		return nil, fmt.Errorf("the portal's client key: %w", err)
	}
	redirect := origin + "/my/callback"
	id, js, err := identity.RegisterPortal(ctx, p.db.Identity(), p.audit, key, redirect, "thiqa-serve")
	if err != nil {
		return nil, err
	}
	return &webportal.OIDCClient{Issuer: cfg.Identity.IssuerOr(cfg.PublicBaseURL), ClientID: id, RedirectURI: redirect, Key: js}, nil
}
