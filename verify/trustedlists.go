package verify

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/verify/tsl"
)

// TrustedListOptions are the trusted lists a caller names besides the
// configured ones (thiqa verify --tsl, --tsl-signer) and how to load them.
type TrustedListOptions struct {
	// Files are lists (files or URLs), each checked against every
	// certificate of SignerFiles.
	Files []string
	// SignerFiles are PEM files of the certificates allowed to sign Files.
	SignerFiles []string
	// Offline reads files and cached copies only.
	Offline bool
	// Timeout bounds fetching one list.
	Timeout time.Duration
}

// ReadPEMFiles reads every certificate of the PEM files paths
// (ReadPEMFile), in order.
func ReadPEMFiles(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		certs, err := ReadPEMFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, certs...)
	}
	return out, nil
}

// LoadTrustedLists loads the lists of opts and those of the configuration
// c (nil: none), whose file names resolve makes absolute. Fetched lists are
// cached in c's trustedListCache, or without a configuration in the user's
// cache folder. It returns nil when no list is named, and the warnings of
// loading.
func LoadTrustedLists(ctx context.Context, c *Config, resolve func(string) string, opts TrustedListOptions) (TrustedLists, []string, error) {
	var sources []tsl.Source
	signers, err := ReadPEMFiles(opts.SignerFiles)
	if err != nil {
		return nil, nil, fmt.Errorf("--tsl-signer: %w", err)
	}
	for _, f := range opts.Files {
		sources = append(sources, tsl.Source{Location: f, Signers: signers})
	}
	loader := &tsl.Loader{Offline: opts.Offline, Timeout: opts.Timeout}
	if c != nil {
		for i, t := range c.TrustedLists {
			src := tsl.Source{Location: t.Location(), Territories: t.Territories}
			if t.File != "" {
				src.Location = resolve(t.File)
			}
			files := make([]string, len(t.Signers))
			for j, f := range t.Signers {
				files[j] = resolve(f)
			}
			if src.Signers, err = ReadPEMFiles(files); err != nil {
				return nil, nil, fmt.Errorf("verify.trustedLists[%d].signers: %w", i, err)
			}
			sources = append(sources, src)
		}
		cache := c.TrustedListCache
		if cache == "" {
			cache = tsl.DefaultCacheDir
		}
		loader.CacheDir = resolve(cache)
		loader.Offline = opts.Offline || c.TrustedListsOffline
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
	return trust, rep.AllWarnings(), nil
}

// LiveTrustedLists loads the configured trusted lists for a server
// (bounded by two minutes) and returns them with the loop that reloads
// them every trustedListRefresh until its context ends. A list that cannot
// be loaded at start is logged on logger, not fatal: verification says
// "unknown" until a reload succeeds. Both are nil when no list is
// configured.
func (c Config) LiveTrustedLists(ctx context.Context, resolve func(string) string, logger *slog.Logger) (TrustedLists, func(context.Context)) {
	if len(c.TrustedLists) == 0 {
		return nil, nil
	}
	live := &tsl.Live{}
	timeout := c.WithDefaults().FetchTimeout * 3
	load := func(ctx context.Context) (*tsl.Trust, []string, error) {
		lists, warnings, err := LoadTrustedLists(ctx, &c, resolve, TrustedListOptions{Timeout: timeout})
		t, _ := lists.(*tsl.Trust)
		return t, warnings, err
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	live.Reload(lctx, load, logger)
	cancel()
	every := cmp.Or(c.TrustedListRefresh, tsl.DefaultRefresh)
	return live, func(ctx context.Context) { live.Refresh(ctx, every, load, logger) }
}
