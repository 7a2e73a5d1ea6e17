package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/serve"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
)

// platform is what every service is built on: the configuration, logging,
// metrics, the token, the store, the audit log and (when serving)
// authentication.
type platform struct {
	cfg    *config.Config
	logger *slog.Logger
	reg    prometheus.Registerer
	token  *hsm.Token
	db     *store.DB
	audit  *audit.Log
	authn  *auth.Authenticator // nil outside `thiqa serve`
	// actor names the process in the records of what it does by itself,
	// such as the keys it generates: "thiqa-serve" while serving, ""
	// (keyring.InitActor) for `thiqa init` and the other verbs.
	actor string
	// certStatus answers whether a certificate may be used now, from this
	// deployment's records: every client-certificate path asks it.
	certStatus *revocation.Checker
	// revokedCAs is shared by every CA authority the process opens: the
	// issuing CAs the root CRL revokes issue nothing (ca.RevokedIssuers).
	revokedCAs *ca.RevokedIssuers
}

// newCertificateStatus builds the one certificate status checker of a
// process over the store, reusing an answer for at most
// revocation.pollEvery (the bound within which every instance sees a
// revocation recorded by another).
func newCertificateStatus(cfg *config.Config, db *store.DB) *revocation.Checker {
	maxAge := cfg.Revocation.PollEvery
	if maxAge <= 0 {
		maxAge = 2 * time.Second // the default of revocation.pollEvery
	}
	return revocation.NewChecker(db.Certificates(nil), maxAge, nil)
}

// serving collects what the services add to `thiqa serve`.
type serving struct {
	mux *serve.Mux
	// raw routes a path prefix to a handler before the mux sees the
	// request, for paths the mux must not clean (GET /ocsp/{base64}: base64
	// may hold "//", which the mux would redirect).
	raw   map[string]http.Handler
	ready map[string]func(context.Context) error
	// warnings are readiness notes that leave /readyz at 200: a non-empty
	// text replaces the check's "ok" (the root CRL close to lapsing).
	warnings map[string]func() string
	// background work runs until the server shuts down.
	background []func(ctx context.Context)
	// stopping runs as the server starts shutting down (serve.Options.Stopping).
	stopping []func()
	// closers run after the server stopped, last added first.
	closers []func()
	// metrics, when set, is the /metrics handler to serve on its own
	// listener (metrics.listen) instead of the mux.
	metrics http.Handler
	// tsa is this server's own time-stamp authority once the TSA service
	// is wired (nil otherwise): the signing service asks it for signature
	// time-stamps in process instead of over HTTP.
	tsa *timestamp.Service
	// csc is the CSC API once the signing service is wired (nil
	// otherwise): the digital ID authorises its credentials (OAuth2).
	csc *csc.API
	// ca, revocations and signing are the services wired so far (nil when
	// disabled): renewal works over the three.
	ca          *wiredCA
	revocations *revocation.Service
	signing     *signing.Service
	// renewer is the CA's renewal once wired: CMP kur and EST
	// simplereenroll renew through it.
	renewer *ca.Renewer
}

// wiredCA is the CA as wired: its authority, HTTP API and token keys.
type wiredCA struct {
	authority *ca.Authority
	api       *ca.API
	keys      *tokenKeys
}

// serviceWiring builds one service of `thiqa serve` and registers its routes.
type serviceWiring struct {
	name string
	wire func(ctx context.Context, p *platform, s *serving) error
}

// services lists what `thiqa serve` runs, in wiring order. Each service is
// wired in its own file of this package.
func services() []serviceWiring {
	return []serviceWiring{
		{"deployment identity", wireDeployment},
		{"platform", wirePlatform},
		{"audit checkpoints", wireAuditCheckpoints},
		{"ca", wireCA},
		{"revocation", wireRevocation},
		{"tsa", wireTSA},
		{"signing", wireSigning},
		{"identity", wireIdentity}, // after signing: it authorises the signing credentials
		{"activity", wireActivity}, // a citizen's own audit records
		{"renewal", wireRenewal},   // after the CA, revocation and signing: it works over them
		{"enrolment", wireEnrol},   // CMP and EST, after the renewal: a key update is one
		{"verify", wireVerify},
		{"trusted list", wireTSL},
		{"portal", wirePortal},
		{"notifications", wireNotify}, // tails the audit log: last, so that nothing it tells is missed
	}
}

// initStep is one thing `thiqa init` prepares once the token and the store
// are open. Steps are idempotent: what exists is kept, never replaced.
type initStep struct {
	name string
	run  func(ctx context.Context, p *platform, out io.Writer) error
}

// initSteps lists what `thiqa init` prepares, in order.
func initSteps() []initStep {
	return []initStep{
		{"development token issuer", initDevIssuer},
		{"audit checkpoint key", initAuditCheckpoint},
		{"CA hierarchy", initCA},
		{"deployment identity", initDeployment},
		{"OCSP responders", initResponders},
		{"enrolment protocols", initEnrol},
		{"digital-ID token signer", initIdentity},
		{"TSA unit", initTSA},
		{"signing credentials", initSigning},
		{"trusted-list signer", initTSLSigner},
	}
}

// handleRaw routes the requests whose path starts with prefix to h before
// the mux sees them (see raw).
func (s *serving) handleRaw(prefix string, h http.Handler) { s.raw[prefix] = h }
