package main

// Verification for relying parties: `thiqa verify`, POST /api/v1/verify
// (public, size-limited, rate-limited per client IP, a bounded number of
// verifications in progress per client IP and overall) and the page at GET
// /verify. The verifier trusts this deployment's root CA and the configured
// extra anchors; it fetches revocation information online (cached, with
// timeouts, a bounded number of requests per document) unless told not
// to. The server's fetches reach only public addresses, publicBaseURL's
// host and verify.fetchAllowHosts; `thiqa verify`, run by a user on their
// own machine for themselves, fetches wherever the trusted certificates
// point and prints the fetch errors in full.

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/web"
)

// Exit codes of `thiqa verify` (the first three are the report's own).
const (
	verifyExitCannotRun = 3
)

// cannotRun marks an error that kept `thiqa verify` from validating.
func cannotRun(format string, a ...any) error {
	return withExit(verifyExitCannotRun, fmt.Errorf(format, a...))
}

// runVerify is `thiqa verify FILE [--trust PEM]... [--at RFC3339] [--json]
// [--data DIR] [--offline] [--timeout D]`. Flags may come before or after
// FILE. Without --trust or --data it still validates, with a warning: a
// broken document is TOTAL-FAILED, an intact one INDETERMINATE. Exit codes:
// 0 TOTAL-PASSED, 1 TOTAL-FAILED, 2 INDETERMINATE, 3 the validation could
// not run (unreadable file, bad flags).
func runVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("verify", env)
	var trust stringList
	fs.Var(&trust, "trust", "PEM file of trusted root certificates (repeatable)")
	at := fs.String("at", "", "validate at this time (RFC 3339) instead of now")
	asJSON := fs.Bool("json", false, "print the JSON report (docs/verify-report.md)")
	dir := fs.String("data", "", "data folder whose root CA (and configured verify.trustAnchorFiles) to trust")
	offline := fs.Bool("offline", false, "never fetch OCSP responses or CRLs online; use only what the document embeds")
	timeout := fs.Duration("timeout", 10*time.Second, "bound of each online revocation fetch")
	payloadFile := fs.String("payload", "", "for a JAdES signature with a detached payload: the signed JSON document")
	var tslFiles, tslSigners stringList
	fs.Var(&tslFiles, "tsl", "ETSI trusted list (or EU LOTL) FILE or URL: its qualified services are anchors and decide `qualified` (repeatable)")
	fs.Var(&tslSigners, "tsl-signer", "PEM file of a certificate allowed to sign the --tsl lists (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: thiqa verify FILE [--trust PEM]... [--tsl FILE|URL --tsl-signer PEM]... [--at RFC3339] [--json] [--data DIR] [--offline] [--payload JSON]")
		fs.PrintDefaults()
	}
	file, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	var validationTime time.Time
	if *at != "" {
		if validationTime, err = time.Parse(time.RFC3339, *at); err != nil {
			return cannotRun("--at: want an RFC 3339 time such as 2026-11-22T10:00:00Z, got %q", *at)
		}
	}
	if *timeout <= 0 {
		return cannotRun("--timeout must be positive")
	}
	var anchors []*x509.Certificate
	var cfg *config.Config
	if *dir != "" {
		if cfg, err = loadConfig(*dir); err != nil {
			return cannotRun("%w", err)
		}
		if anchors, err = deploymentAnchors(cfg); err != nil {
			return cannotRun("%w", err)
		}
	}
	lists, tslWarnings, err := loadTrustedLists(ctx, cfg, tslFiles, tslSigners, *offline, 3**timeout)
	if err != nil {
		return cannotRun("%w", err)
	}
	for _, w := range tslWarnings {
		fmt.Fprintf(env.stderr, "thiqa verify: trusted lists: %s\n", w)
	}
	for _, p := range trust {
		certs, err := verify.ReadPEMFile(p)
		if err != nil {
			return cannotRun("--trust: %w", err)
		}
		anchors = append(anchors, certs...)
	}
	f, size, err := verify.OpenDocument(file)
	if err != nil {
		return cannotRun("%w", err)
	}
	defer f.Close()
	if len(anchors) == 0 && lists == nil {
		// Integrity needs no anchor: the verdict is still given (TOTAL-FAILED
		// for a broken document, else INDETERMINATE), and the report says why.
		fmt.Fprintln(env.stderr, "warning: no trust anchor configured (--trust PEM, --data DIR or --tsl LIST): signatures are checked for integrity only")
	}
	v := verify.NewOnline(verify.Options{TrustAnchors: anchors, At: validationTime, AllowOnline: !*offline, FetchTimeout: *timeout, TrustedLists: lists})
	rep, err := verifyFile(ctx, v, f, size, *payloadFile)
	if err != nil {
		return cannotRun("%w", err)
	}
	if err := rep.Write(env.stdout, *asJSON); err != nil {
		return cannotRun("writing the report: %w", err)
	}
	if code := rep.ExitCode(); code != 0 {
		return withExit(code, errSilent)
	}
	return nil
}

// parseInterleaved parses flags that may come before and after the one
// positional argument, which it returns. Bad flags exit 3 (could not run).
func parseInterleaved(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := positionals(fs, args)
	if err != nil {
		return "", err
	}
	switch len(pos) {
	case 0:
		return "", cannotRun("name the PDF to verify: thiqa verify FILE [flags]")
	case 1:
		return pos[0], nil
	default:
		return "", cannotRun("verify one file at a time (got %q and %q)", pos[0], pos[1])
	}
}

// positionals parses flags that may come before and after the positional
// arguments, which it returns in order. Bad flags exit 3 (could not run).
func positionals(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, withExit(0, errSilent)
			}
			return nil, withExit(verifyExitCannotRun, errSilent)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// deploymentAnchors returns the data folder's root CA certificate (when the
// CA is enabled) and the configured verify.trustAnchorFiles.
func deploymentAnchors(cfg *config.Config) ([]*x509.Certificate, error) {
	var anchors []*x509.Certificate
	if cfg.CA.Enabled() {
		p := caCertPath(cfg, cfg.CA.Root.Name)
		certs, err := verify.ReadPEMFile(p)
		if err != nil {
			return nil, fmt.Errorf("root CA certificate (run `thiqa init --data %s`): %w", cfg.Dir(), err)
		}
		anchors = append(anchors, certs...)
	}
	for _, f := range cfg.Verify.TrustAnchorFiles {
		certs, err := verify.ReadPEMFile(cfg.Resolve(f))
		if err != nil {
			return nil, fmt.Errorf("verify.trustAnchorFiles: %w", err)
		}
		anchors = append(anchors, certs...)
	}
	return anchors, nil
}

// verifyFile validates f (Verifier.VerifyFile): a JAdES signature, with the
// detached payload from payloadFile when given, or else a PDF.
func verifyFile(ctx context.Context, v *verify.Verifier, f *os.File, size int64, payloadFile string) (*report.Report, error) {
	var payload func() ([]byte, error)
	if payloadFile != "" {
		payload = func() ([]byte, error) {
			b, err := verify.ReadPayloadFile(payloadFile)
			if err != nil {
				return nil, fmt.Errorf("--payload: %w", err)
			}
			return b, nil
		}
	}
	rep, err := v.VerifyFile(ctx, f, size, payload)
	if errors.Is(err, verify.ErrPayloadForPDF) {
		return nil, errors.New("--payload is for a JAdES signature, not a PDF")
	}
	return rep, err
}

// wireVerify serves POST /api/v1/verify (public, size- and rate-limited,
// with bounded verifications in progress per client IP and overall) and
// the verification page at GET /verify.
func wireVerify(ctx context.Context, p *platform, s *serving) error {
	vc := p.cfg.Verify.WithDefaults()
	if vc.Disabled {
		return nil
	}
	anchors, err := deploymentAnchors(p.cfg)
	if err != nil {
		return err
	}
	logger := p.logger.With("service", "verify")
	lists := serveTrustedLists(ctx, p, s, logger)
	if len(anchors) == 0 && lists == nil {
		logger.Warn("verification without trust anchors (enable the CA, set verify.trustAnchorFiles or verify.trustedLists): integrity only, no signature can be TOTAL-PASSED")
	}
	allow, err := fetchAllowHosts(p.cfg.PublicBaseURL, vc.FetchAllowHosts)
	if err != nil {
		return err
	}
	// Anonymous callers: fetches reach public addresses, this deployment
	// and the configured hosts only, and reports keep fetch errors vague.
	v := verify.NewOnline(verify.Options{TrustAnchors: anchors, AllowOnline: !vc.OfflineRevocation, FetchTimeout: vc.FetchTimeout,
		MaxFileSize: vc.MaxUploadBytes, Logger: logger, TrustedLists: lists, Public: true, FetchAllowHosts: allow})
	maxConcurrent := cmp.Or(vc.MaxConcurrent, verify.DefaultMaxConcurrent())
	perClient := cmp.Or(vc.MaxConcurrentPerClient, verify.DefaultMaxConcurrentPerClient)
	if err := v.Register(s.mux, verify.RouteOptions{MaxUploadBytes: vc.MaxUploadBytes, RatePerSecond: vc.RatePerSecond, Burst: vc.Burst,
		MaxConcurrent: maxConcurrent, MaxConcurrentPerClient: perClient, Registerer: p.reg}); err != nil {
		return err
	}
	page := web.Handler(web.Options{APIPath: "/api/v1/verify", MaxUploadBytes: vc.MaxUploadBytes, NotFound: s.mux.NotFound})
	s.mux.Handle("GET /verify", page)
	s.mux.Handle("GET /verify/", page)
	logger.Info("verification ready", "anchors", len(anchors), "onlineRevocation", !vc.OfflineRevocation, "fetchAllowHosts", allow,
		"maxUploadBytes", vc.MaxUploadBytes, "ratePerSecond", vc.RatePerSecond, "burst", vc.Burst,
		"maxConcurrent", maxConcurrent, "maxConcurrentPerClient", perClient)
	return nil
}

// fetchAllowHosts returns the host:port entries the public verifier may
// fetch from at any address: publicBaseURL's host (this deployment's own
// OCSP and CRL URLs, 127.0.0.1:8080 in a local setup) and
// verify.fetchAllowHosts.
func fetchAllowHosts(publicBaseURL string, configured []string) ([]string, error) {
	own, err := verify.HostOfURL(publicBaseURL)
	if err != nil {
		return nil, fmt.Errorf("publicBaseURL: %w", err)
	}
	allow := []string{own}
	for i, h := range configured {
		hosts, err := verify.ParseFetchHost(h)
		if err != nil {
			return nil, fmt.Errorf("verify.fetchAllowHosts[%d]: %w", i, err)
		}
		allow = append(allow, hosts...)
	}
	return allow, nil
}
