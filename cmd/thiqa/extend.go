package main

// `thiqa extend`: long-term archive. One file (--in, --out) or the archive
// job over a folder (--dir, --renew-before), either in process with the
// data folder's token and TSA (--data) or through a server's POST
// /api/v1/extend (--url, --token-file).

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing/archive"
	"github.com/thiqa/thiqa/signing/client"
	"github.com/thiqa/thiqa/verify"
)

// runExtend is `thiqa extend --in F --out G --level B-LT|B-LTA [--force]
// [--data D | --url U --token-file T]` and the archive job `thiqa extend
// --dir D --level B-LTA --renew-before 90d [...]`.
func runExtend(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("extend", env)
	inPath := fs.String("in", "", "signed PDF to extend")
	outPath := fs.String("out", "", "extended PDF to write (written only on success)")
	dir := fs.String("dir", "", "archive folder: renew every PDF in it (and below) that needs it, in place")
	renew := fs.String("renew-before", "90d", "with --dir: renew when the last time-stamp's TSA certificate expires within this period (e.g. 90d, 2160h)")
	levelName := fs.String("level", "B-LTA", "B-LT (validation data) or B-LTA (and a document time-stamp)")
	force := fs.Bool("force", false, "extend even when a signature does not verify (the audit record says so)")
	data := fs.String("data", "", "data folder: extend in process with its token, TSA and revocation services")
	base := fs.String("url", "", "base URL of a Thiqa server: extend through POST /api/v1/extend")
	tokenFile := fs.String("token-file", "", "with --url: file holding an agency's or operator's API token")
	timeout := fs.Duration("timeout", 5*time.Minute, "time limit of each document")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	level, err := signer.ParseLevel(*levelName)
	if err != nil || (level != signer.LevelBLT && level != signer.LevelBLTA) {
		return withExit(2, fmt.Errorf("--level must be B-LT or B-LTA, got %q", *levelName))
	}
	if (*data == "") == (*base == "") {
		return withExit(2, errors.New("name either --data DIR (in process) or --url URL --token-file F (through a server)"))
	}
	single := *inPath != "" || *outPath != ""
	if single == (*dir != "") || (single && (*inPath == "" || *outPath == "")) {
		return withExit(2, errors.New("extend one file (--in F --out G) or a folder (--dir D)"))
	}
	var ext archive.Extender
	var anchors []*x509.Certificate
	if *data != "" {
		p, closePlatform, err := openOperatorFolder(ctx, env, *data, needSigning)
		if err != nil {
			return err
		}
		defer closePlatform()
		s, err := newSigningService(ctx, p, nil, nil, nil)
		if err != nil {
			return err
		}
		ext = archive.InProcess(s, operatorName(), level, *force)
		anchors, _ = deploymentAnchors(p.cfg)
	} else {
		if *tokenFile == "" {
			return withExit(2, errors.New("--url needs --token-file"))
		}
		token, err := config.ReadSecret(*tokenFile, "")
		if err != nil {
			return fmt.Errorf("API token: %w", err)
		}
		ext = (&client.Client{Base: *base, Token: token}).Extender(level, *force)
	}
	if single {
		return archive.ExtendFile(ctx, ext, *inPath, *outPath, *timeout, env.stdout, env.stderr)
	}
	period, err := parseDays(*renew)
	if err != nil {
		return withExit(2, fmt.Errorf("--renew-before: %w", err))
	}
	// Offline: the job needs the structure and the times, not a verdict on
	// revocation; the extension itself judges each document again.
	v := verify.New(verify.Options{TrustAnchors: anchors, FetchTimeout: 10 * time.Second})
	job := archive.Job{Extend: ext, Verifier: v, RenewBefore: period, Timeout: *timeout, Now: time.Now, Out: env.stdout}
	if err := job.Run(ctx, *dir); err != nil {
		var failed *archive.FailedError
		if errors.As(err, &failed) {
			return withExit(1, err)
		}
		return err
	}
	return nil
}
