package main

// Trusted lists (ETSI TS 119 612): `thiqa tsl check` validates one list as a
// relying party would; `thiqa tsl build` writes and signs this deployment's
// own list with the tsl-signer key on the token.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/tsl/build"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// runTSL dispatches `thiqa tsl check|build`.
func runTSL(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return tslCheck(ctx, env, args[1:])
		case "build":
			return tslBuild(ctx, env, args[1:])
		}
	}
	return withExit(2, errors.New("usage: thiqa tsl check FILE|URL [--signer PEM]... [--json] | thiqa tsl build --data DIR [--out FILE] [--sequence N] [--next-update 180d]"))
}

// onePositional parses flags around exactly one positional argument; bad
// flags and a missing argument exit 3 (could not run).
func onePositional(fs *flag.FlagSet, args []string, what string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", withExit(0, errSilent)
			}
			return "", withExit(verifyExitCannotRun, errSilent)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", cannotRun("name exactly one %s", what)
	}
	return pos[0], nil
}

// tslCheckOutput is `thiqa tsl check --json`.
type tslCheckOutput struct {
	Location        string               `json:"location"`
	Indication      report.Indication    `json:"indication"`
	SubIndication   report.SubIndication `json:"subIndication,omitempty"`
	Territory       string               `json:"territory,omitempty"`
	Version         int                  `json:"tslVersion,omitempty"`
	SequenceNumber  int                  `json:"sequenceNumber,omitempty"`
	Type            string               `json:"tslType,omitempty"`
	Operator        string               `json:"schemeOperator,omitempty"`
	IssueDate       *time.Time           `json:"issueDate,omitempty"`
	NextUpdate      *time.Time           `json:"nextUpdate,omitempty"`
	Providers       int                  `json:"trustServiceProviders"`
	Services        int                  `json:"services"`
	Pointers        int                  `json:"pointersToOtherLists"`
	Signer          string               `json:"signer,omitempty"`
	SigningTime     *time.Time           `json:"signingTime,omitempty"`
	Errors          []string             `json:"errors,omitempty"`
	Warnings        []string             `json:"warnings,omitempty"`
	DistributionURI []string             `json:"distributionPoints,omitempty"`
}

func tslCheck(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("tsl check", env)
	var signers pemFileList
	fs.Var(&signers, "signer", "PEM file of the certificate(s) allowed to sign the list (repeatable)")
	asJSON := fs.Bool("json", false, "print JSON")
	at := fs.String("at", "", "validate at this time (RFC 3339) instead of now")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of fetching a URL")
	loc, err := onePositional(fs, args, "trusted list: thiqa tsl check FILE|URL [--signer PEM]")
	if err != nil {
		return err
	}
	opts := tsl.CheckOptions{}
	if *at != "" {
		if opts.At, err = time.Parse(time.RFC3339, *at); err != nil {
			return cannotRun("--at: want an RFC 3339 time, got %q", *at)
		}
	}
	for _, p := range signers {
		certs, err := readAnchors(p)
		if err != nil {
			return cannotRun("--signer: %w", err)
		}
		opts.Signers = append(opts.Signers, certs...)
	}
	raw, err := readList(ctx, loc, *timeout)
	if err != nil {
		return cannotRun("%w", err)
	}
	res := tsl.Check(raw, opts)
	out := tslCheckOutput{Location: loc, Indication: res.Indication, SubIndication: res.SubIndication, Errors: res.Errors, Warnings: res.Warnings}
	if l := res.List; l != nil {
		out.Territory, out.Version, out.SequenceNumber, out.Type, out.Operator = l.Territory, l.Version, l.SequenceNumber, l.Type, l.Operator
		out.IssueDate, out.Providers, out.Services, out.Pointers, out.DistributionURI = &l.IssueDate, len(l.Providers), l.ServiceCount(), len(l.Pointers), l.DistributionPoints
		if !l.NextUpdate.IsZero() {
			out.NextUpdate = &l.NextUpdate
		}
	}
	if res.Signer != nil {
		out.Signer = res.Signer.Subject.String()
	}
	if !res.SigningTime.IsZero() {
		out.SigningTime = &res.SigningTime
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = writeTSLText(env.stdout, out)
	}
	if err != nil {
		return cannotRun("writing the result: %w", err)
	}
	if code := (&report.Report{Indication: res.Indication}).ExitCode(); code != 0 {
		return withExit(code, errSilent)
	}
	return nil
}

func writeTSLText(w io.Writer, o tslCheckOutput) error {
	var b strings.Builder
	v := string(o.Indication)
	if o.SubIndication != report.None {
		v += " / " + string(o.SubIndication)
	}
	fmt.Fprintf(&b, "Indication: %s\n", v)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-24s %s\n", k+":", v)
		}
	}
	day := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	line("Scheme territory", o.Territory)
	if o.Version > 0 {
		line("TSL version", strconv.Itoa(o.Version))
		line("Sequence number", strconv.Itoa(o.SequenceNumber))
	}
	line("TSL type", o.Type)
	line("Scheme operator", o.Operator)
	line("Issue date", day(o.IssueDate))
	line("Next update", day(o.NextUpdate))
	fmt.Fprintf(&b, "%-24s %d\n%-24s %d\n", "Trust service providers:", o.Providers, "Services:", o.Services)
	if o.Pointers > 0 {
		fmt.Fprintf(&b, "%-24s %d\n", "Pointers to other lists:", o.Pointers)
	}
	line("Signed by", o.Signer)
	line("Signing time", day(o.SigningTime))
	for _, e := range o.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	for _, wn := range o.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// readList reads a list from a file or a URL (bounded in size and time).
func readList(ctx context.Context, loc string, timeout time.Duration) ([]byte, error) {
	if tsl.IsURL(loc) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return tsl.HTTPFetcher{Client: &http.Client{Timeout: timeout}}.Fetch(ctx, loc, tsl.DefaultMaxBytes)
	}
	f, err := os.Open(loc)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted list: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, tsl.DefaultMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the trusted list: %w", err)
	}
	return raw, nil
}

// parseDays reads "180d" or a Go duration.
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("want a number of days such as 180d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want 180d or a Go duration, got %q", s)
	}
	return d, nil
}

func tslBuild(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("tsl build", env)
	dir := fs.String("data", "", "data folder (required)")
	out := fs.String("out", "", "where to write the list (default: the configuration's tsl.file, served at GET /tsl.xml)")
	seq := fs.Int("sequence", 0, "TSLSequenceNumber (default: one more than the list at --out, else 1)")
	next := fs.String("next-update", "180d", "nextUpdate after the issue date (TS 119 612: at most 6 months)")
	version := fs.Int("tsl-version", 6, "TSL version to write: 5 or 6")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nextUpdate, err := parseDays(*next)
	if err != nil {
		return withExit(2, fmt.Errorf("--next-update: %w", err))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	tc := cfg.ResolvedTSL()
	if *out == "" {
		*out = tc.File
	}
	if *seq == 0 {
		*seq = nextSequence(*out)
	}
	p, closeAll, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	key, cert, err := tslSigner(ctx, p)
	if err != nil {
		return err
	}
	services, territory, err := deploymentServices(cfg)
	if err != nil {
		return err
	}
	if tc.Territory != "" {
		territory = tc.Territory
	}
	now := time.Now().UTC().Truncate(time.Second)
	raw, err := build.Build(build.Options{
		Version: *version, Sequence: *seq, Territory: territory, Operator: tc.Operator, Provider: tc.Operator,
		InformationURI: cfg.PublicBaseURL, Street: "PLACEHOLDER", Locality: "PLACEHOLDER", Services: services,
		IssueDate: now, NextUpdate: now.Add(nextUpdate), DistributionPoint: strings.TrimSuffix(cfg.PublicBaseURL, "/") + "/tsl.xml",
		Signer: key, Certificate: cert,
	})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	if _, err := p.audit.Append(ctx, audit.Entry{
		Actor: operatorName(), Action: "tsl.build", Object: *out, Outcome: "success",
		Details: map[string]any{"sequence": *seq, "territory": territory, "services": len(services), "sha256": hex.EncodeToString(sum[:]),
			"nextUpdate": now.Add(nextUpdate).Format(time.RFC3339), "signer": key.URI()},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(*out), err)
	}
	if err := atomicfile.Write(*out, raw, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(env.stdout, "trusted list %s: territory %s, sequence %d, %d services, next update %s\nsigned by %s (certificate %s)\n",
		*out, territory, *seq, len(services), now.Add(nextUpdate).Format(time.RFC3339), key.URI(), tc.SignerCertificate)
	return nil
}

// nextSequence is one more than the sequence number of the list at path
// (read without checking its signature: only the number is taken), else 1.
func nextSequence(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 1
	}
	if res := tsl.Check(raw, tsl.CheckOptions{}); res.List != nil {
		return res.List.SequenceNumber + 1
	}
	return 1
}

// deploymentServices lists this deployment's qualified services: a CA/QC
// service for each issuing CA that issues qualified certificates (its
// additional service information from the profiles' QC types) and a
// TSA/QTST service whose identity is the TSA's issuing CA (so that renewing
// the unit certificate does not need a new list). The territory is the
// root CA's country.
func deploymentServices(cfg *config.Config) ([]build.Service, string, error) {
	if !cfg.CA.Enabled() {
		return nil, "", errors.New("this data folder runs no CA: there is nothing to list")
	}
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return nil, "", err
	}
	root, err := readAnchors(caCertPath(cfg, cfg.CA.Root.Name))
	if err != nil {
		return nil, "", fmt.Errorf("root CA certificate (run `thiqa init --data %s`): %w", cfg.Dir(), err)
	}
	territory := ""
	if len(root[0].Subject.Country) > 0 {
		territory = root[0].Subject.Country[0]
	}
	var out []build.Service
	for _, is := range cfg.CA.Issuers {
		certs, err := readAnchors(caCertPath(cfg, is.Name))
		if err != nil {
			return nil, "", fmt.Errorf("CA %s: %w", is.Name, err)
		}
		later, err := installedGenerations(cfg, is.Name) // each key rolled over to is a service of its own
		if err != nil {
			return nil, "", fmt.Errorf("CA %s: %w", is.Name, err)
		}
		generations := append(certs[:1:1], later...)
		if cfg.TSA.Enabled() && is.Name == cfg.TSA.CAOrDefault() {
			for _, c := range generations {
				out = append(out, build.Service{Type: tsl.SvcTypeTSAQTST, Name: c.Subject.CommonName + " time-stamping",
					Certificates: []*x509.Certificate{c}, Status: tsl.StatusGranted, Since: c.NotBefore})
			}
			continue
		}
		var asi []string
		for _, name := range profiles.Names() {
			pr, err := profiles.Get(name)
			if err != nil || !pr.QC.Compliance || !slices.Contains(pr.Issuers, is.Name) {
				continue
			}
			for _, t := range pr.QC.Types {
				u := map[string]string{policies.OIDQcTypeESign: tsl.ASiForeSignatures, policies.OIDQcTypeESeal: tsl.ASiForeSeals}[t.String()]
				if u != "" && !slices.Contains(asi, u) {
					asi = append(asi, u)
				}
			}
		}
		if len(asi) == 0 {
			continue // issues no qualified certificates for signatures or seals
		}
		slices.Sort(asi)
		for _, c := range generations {
			out = append(out, build.Service{Type: tsl.SvcTypeCAQC, Name: c.Subject.CommonName, Certificates: []*x509.Certificate{c},
				Status: tsl.StatusGranted, Since: c.NotBefore, AdditionalInfo: asi})
		}
	}
	return out, territory, nil
}

// loadTrustedLists loads the lists named on the command line (each checked
// against every --tsl-signer) and in the configuration.
func loadTrustedLists(ctx context.Context, cfg *config.Config, files, signerFiles []string, offline bool, timeout time.Duration) (verify.TrustedLists, []string, error) {
	var sources []tsl.Source
	var cliSigners []*x509.Certificate
	for _, p := range signerFiles {
		certs, err := readAnchors(p)
		if err != nil {
			return nil, nil, fmt.Errorf("--tsl-signer: %w", err)
		}
		cliSigners = append(cliSigners, certs...)
	}
	for _, f := range files {
		sources = append(sources, tsl.Source{Location: f, Signers: cliSigners})
	}
	loader := &tsl.Loader{Offline: offline, Timeout: timeout}
	if cfg != nil {
		vc := cfg.Verify
		for i, t := range vc.TrustedLists {
			src := tsl.Source{Location: t.Location(), Territories: t.Territories}
			if t.File != "" {
				src.Location = cfg.Resolve(t.File)
			}
			for _, s := range t.Signers {
				certs, err := readAnchors(cfg.Resolve(s))
				if err != nil {
					return nil, nil, fmt.Errorf("verify.trustedLists[%d].signers: %w", i, err)
				}
				src.Signers = append(src.Signers, certs...)
			}
			sources = append(sources, src)
		}
		cache := vc.TrustedListCache
		if cache == "" {
			cache = config.DefaultTrustedListCache
		}
		loader.CacheDir = cfg.Resolve(cache)
		loader.Offline = offline || vc.TrustedListsOffline
	} else if d, err := os.UserCacheDir(); err == nil {
		loader.CacheDir = filepath.Join(d, "thiqa", "tsl")
	}
	if len(sources) == 0 {
		return nil, nil, nil
	}
	trust, rep, err := loader.Load(ctx, sources)
	if err != nil {
		return nil, nil, err
	}
	warnings := rep.Warnings
	for _, e := range rep.Refused {
		warnings = append(warnings, e.Error())
	}
	return trust, warnings, nil
}
