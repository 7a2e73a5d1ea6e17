package main

// `thiqa extend`: long-term archive. One file (--in, --out) or the archive
// job over a folder (--dir, --renew-before), either in process with the
// data folder's token and TSA (--data) or through a server's POST
// /api/v1/extend (--url, --token-file).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/verify/report"
)

// extender extends one document, written to out only on success.
type extender func(ctx context.Context, in *os.File, size int64, out io.Writer) (missing []string, err error)

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
	var ext extender
	var anchors func() *verifierSettings
	if *data != "" {
		cfg, err := loadConfig(*data)
		if err != nil {
			return err
		}
		if !cfg.Signing.Enabled(cfg.CA) {
			return errors.New("this data folder has no signing service (ca section missing or signing.disabled)")
		}
		p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
		if err != nil {
			return err
		}
		defer closePlatform()
		s, err := newSigningService(ctx, p, nil, nil, nil)
		if err != nil {
			return err
		}
		ext = func(ctx context.Context, in *os.File, size int64, out io.Writer) ([]string, error) {
			var missing []string
			_, err := s.Extend(ctx, operatorName(), level, *force, in, size, func(_ int64, m []string) (io.Writer, error) {
				missing = m
				return out, nil
			})
			return missing, err
		}
		anchors = func() *verifierSettings { a, _ := deploymentAnchors(cfg); return &verifierSettings{anchors: a} }
	} else {
		if *tokenFile == "" {
			return withExit(2, errors.New("--url needs --token-file"))
		}
		token, err := config.ReadSecret(*tokenFile, "")
		if err != nil {
			return fmt.Errorf("API token: %w", err)
		}
		ext = remoteExtender(*base, token, level, *force)
		anchors = func() *verifierSettings { return &verifierSettings{} }
	}
	if single {
		return extendFile(ctx, env, ext, *inPath, *outPath, *timeout)
	}
	period, err := parseDays(*renew)
	if err != nil {
		return withExit(2, fmt.Errorf("--renew-before: %w", err))
	}
	job := archiveJob{env: env, ext: ext, settings: anchors(), renewBefore: period, timeout: *timeout, now: time.Now}
	return job.run(ctx, *dir)
}

// extendFile extends in into out (written whole, only on success).
func extendFile(ctx context.Context, env *cliEnv, ext extender, inPath, outPath string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	missing, n, err := extendInto(ctx, ext, inPath, outPath)
	if err != nil {
		return fmt.Errorf("extending %s: %w", inPath, err)
	}
	for _, m := range missing {
		fmt.Fprintf(env.stderr, "warning: no revocation data for %s\n", m)
	}
	fmt.Fprintf(env.stdout, "extended %s -> %s (%d bytes, %s)\n", inPath, outPath, n, time.Since(start).Round(time.Millisecond))
	return nil
}

// extendInto extends inPath to a temporary file next to outPath, synced and
// renamed over outPath (which may be inPath) only on success.
func extendInto(ctx context.Context, ext extender, inPath, outPath string) ([]string, int64, error) {
	in, err := os.Open(inPath)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), ".extend-*.pdf")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp.Name())
	missing, err := ext(ctx, in, st.Size(), tmp)
	if err == nil {
		err = tmp.Sync()
	}
	n, _ := tmp.Seek(0, io.SeekCurrent)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n == 0 {
		err = errors.New("nothing was written")
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), st.Mode().Perm())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), outPath)
	}
	return missing, n, err
}

// remoteExtender extends through a server's POST /api/v1/extend.
func remoteExtender(base, token string, level signer.Level, force bool) extender {
	return func(ctx context.Context, in *os.File, size int64, out io.Writer) ([]string, error) {
		q := url.Values{"level": {level.String()}}
		if force {
			q.Set("force", "true")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v1/extend?"+q.Encode(), in)
		if err != nil {
			return nil, err
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/pdf")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("calling %s: %w", base, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var p struct {
				problem.Details
				Report *report.Report `json:"report"`
			}
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
				return nil, &refusedError{status: resp.StatusCode, detail: p.Detail}
			}
			return nil, &refusedError{status: resp.StatusCode, detail: strings.TrimSpace(string(raw))}
		}
		if _, err := io.Copy(out, resp.Body); err != nil {
			return nil, fmt.Errorf("receiving the extended document: %w", err)
		}
		return resp.Header.Values(signing.WarningHeader), nil
	}
}

// refusedError is a server's refusal (4xx or 5xx) of one document.
type refusedError struct {
	status int
	detail string
}

func (e *refusedError) Error() string { return fmt.Sprintf("refused (%d): %s", e.status, e.detail) }
