package tsl

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Source is one configured trusted list: a file or an http(s) URL, with the
// certificates allowed to sign it.
type Source struct {
	// Location is a file name or an http:// or https:// URL.
	Location string
	// Signers are the accepted signer certificates.
	Signers []*x509.Certificate
	// Territories, for a list of lists, restricts the pointed-to lists
	// followed (e.g. ["IE", "SK"]); empty follows them all.
	Territories []string
}

// IsURL reports whether a location is fetched over HTTP.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://")
}

// Fetcher fetches a list over the network.
type Fetcher interface {
	Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error)
}

// ErrUnreachable: a list could not be fetched (network, HTTP status, time-out).
var ErrUnreachable = errors.New("tsl: list unreachable")

// ErrOffline: offline, and no cached copy of the list.
var ErrOffline = errors.New("tsl: offline and no cached copy")

// HTTPFetcher fetches with a client bounded by the context and its own
// time-out.
type HTTPFetcher struct {
	Client *http.Client
}

// Fetch implements Fetcher.
func (f HTTPFetcher) Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error) {
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, url, err)
	}
	req.Header.Set("Accept", MimeTypeTSL+", application/xml;q=0.9, */*;q=0.1")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: HTTP %d", ErrUnreachable, url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, url, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrTooLarge, url, maxBytes)
	}
	return body, nil
}

// Loader loads trusted lists: the configured ones and, for a list of
// lists, the lists it points to. Its zero value is usable (online, no
// cache).
type Loader struct {
	// Fetcher fetches URLs (default: HTTPFetcher with Timeout).
	Fetcher Fetcher
	// Timeout bounds each fetch (default 30 s).
	Timeout time.Duration
	// CacheDir keeps the last good copy of every fetched list; "" keeps none.
	CacheDir string
	// CacheFor is how long a cached copy is used without fetching again
	// (default 6 h); an older one is still used when a fetch fails.
	CacheFor time.Duration
	// Offline reads files and cached copies only, never the network.
	Offline bool
	// MaxLists bounds how many lists one Load reads (default 64).
	MaxLists int
	// Parallel bounds concurrent fetches of pointed-to lists (default 4).
	Parallel int
	// Limits bound each list.
	Limits Limits
	// At is the validation time (zero: now).
	At time.Time
	// Logger receives a line per list (default: discard).
	Logger *slog.Logger
}

// Report says what one Load did.
type Report struct {
	// Lists are the lists that passed and are used.
	Lists []Loaded
	// Refused are pointed-to lists that were skipped, with the reason
	// (a failing configured list is an error instead).
	Refused []error
	// Warnings are the warnings of the lists used.
	Warnings []string
}

// Load reads every source and the lists that a list of lists among them
// points to. A configured source that cannot be read or whose signature does
// not pass is an error (*ListError, ErrUnreachable, ErrOffline); a
// pointed-to list that fails is skipped and reported.
func (l *Loader) Load(ctx context.Context, sources []Source) (*Trust, *Report, error) {
	rep := &Report{}
	seen := map[string]bool{}
	maxLists := l.MaxLists
	if maxLists <= 0 {
		maxLists = 64
	}
	type job struct {
		loc     string
		signers []*x509.Certificate
		from    string
	}
	var pointed []job
	for _, src := range sources {
		key := canonicalLocation(src.Location)
		if seen[key] {
			continue
		}
		seen[key] = true
		ld, err := l.loadOne(ctx, src.Location, src.Signers)
		if err != nil {
			return nil, rep, err
		}
		rep.add(ld)
		if !ld.List.IsListOfLists() {
			continue
		}
		for _, p := range ld.List.Pointers {
			if p.MimeType != "" && p.MimeType != MimeTypeTSL {
				continue // the PDF form of a list
			}
			if strings.HasSuffix(strings.ToLower(p.Type), "listofthelists") || p.Location == "" {
				continue // a list of lists is never followed from another: no chains, no loops
			}
			if len(src.Territories) > 0 && !slices.Contains(src.Territories, p.Territory) {
				continue
			}
			k := canonicalLocation(p.Location)
			if seen[k] {
				continue
			}
			seen[k] = true
			pointed = append(pointed, job{loc: p.Location, signers: p.Signers, from: src.Location})
		}
	}
	if len(rep.Lists)+len(pointed) > maxLists {
		rep.Refused = append(rep.Refused, fmt.Errorf("tsl: %d lists named, only %d read (Loader.MaxLists)", len(rep.Lists)+len(pointed), maxLists))
		pointed = pointed[:max(0, maxLists-len(rep.Lists))]
	}
	par := l.Parallel
	if par <= 0 {
		par = 4
	}
	results := make([]*Loaded, len(pointed))
	errs := make([]error, len(pointed))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, j := range pointed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = l.loadOne(ctx, j.loc, j.signers)
		}()
	}
	wg.Wait()
	for i := range pointed {
		if errs[i] != nil {
			rep.Refused = append(rep.Refused, fmt.Errorf("list %s (named by %s): %w", pointed[i].loc, pointed[i].from, errs[i]))
			l.log().Warn("trusted list skipped", "location", pointed[i].loc, "error", errs[i])
			continue
		}
		rep.add(results[i])
	}
	if err := ctx.Err(); err != nil {
		return nil, rep, err
	}
	return NewTrust(rep.Lists...), rep, nil
}

func (r *Report) add(ld *Loaded) {
	r.Lists = append(r.Lists, *ld)
	for _, w := range ld.Result.Warnings {
		r.Warnings = append(r.Warnings, ld.Location+": "+w)
	}
}

func (l *Loader) log() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

// canonicalLocation is the key under which a location counts as seen.
func canonicalLocation(loc string) string {
	if IsURL(loc) {
		s := strings.TrimSuffix(strings.ToLower(loc), "/")
		return strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	}
	if abs, err := filepath.Abs(loc); err == nil {
		return abs
	}
	return loc
}

// loadOne reads and checks one list.
func (l *Loader) loadOne(ctx context.Context, loc string, signers []*x509.Certificate) (*Loaded, error) {
	raw, err := l.read(ctx, loc)
	if err != nil {
		return nil, err
	}
	res := Check(raw, CheckOptions{Signers: signers, At: l.At, Limits: l.Limits})
	if !res.Passed() {
		return nil, &ListError{Location: loc, Result: res}
	}
	l.log().Info("trusted list loaded", "location", loc, "territory", res.List.Territory, "sequence", res.List.SequenceNumber,
		"providers", len(res.List.Providers), "services", res.List.ServiceCount(), "warnings", len(res.Warnings))
	if IsURL(loc) {
		l.store(loc, raw)
	}
	return &Loaded{Location: loc, List: res.List, Result: res}, nil
}

// read returns a list's bytes: a file, a fresh cached copy, the network,
// or (when the network fails) an older cached copy.
func (l *Loader) read(ctx context.Context, loc string) ([]byte, error) {
	lim := l.Limits.withDefaults()
	if !IsURL(loc) {
		f, err := os.Open(loc)
		if err != nil {
			return nil, fmt.Errorf("reading trusted list: %w", err)
		}
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(f, lim.MaxBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading trusted list %s: %w", loc, err)
		}
		return raw, nil
	}
	cached, age, cacheErr := l.cached(loc)
	cacheFor := l.CacheFor
	if cacheFor <= 0 {
		cacheFor = 6 * time.Hour
	}
	if cacheErr == nil && (l.Offline || age < cacheFor) {
		return cached, nil
	}
	if l.Offline {
		return nil, fmt.Errorf("%w: %s", ErrOffline, loc)
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	f := l.Fetcher
	if f == nil {
		f = HTTPFetcher{Client: &http.Client{Timeout: timeout}}
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := f.Fetch(fctx, loc, lim.MaxBytes)
	if err != nil {
		if cacheErr == nil {
			l.log().Warn("trusted list fetch failed; using the cached copy", "location", loc, "age", age.Round(time.Second).String(), "error", err)
			return cached, nil
		}
		return nil, err
	}
	return raw, nil
}

func (l *Loader) cachePath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(l.CacheDir, hex.EncodeToString(sum[:16])+".xml")
}

func (l *Loader) cached(url string) ([]byte, time.Duration, error) {
	if l.CacheDir == "" {
		return nil, 0, os.ErrNotExist
	}
	p := l.cachePath(url)
	st, err := os.Stat(p)
	if err != nil {
		return nil, 0, err
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, 0, err
	}
	return raw, time.Since(st.ModTime()), nil
}

// store keeps a verified list in the cache (atomically; failures are logged).
func (l *Loader) store(url string, raw []byte) {
	if l.CacheDir == "" {
		return
	}
	if err := os.MkdirAll(l.CacheDir, 0o755); err != nil {
		l.log().Warn("trusted list cache", "error", err)
		return
	}
	p := l.cachePath(url)
	tmp, err := os.CreateTemp(l.CacheDir, ".tsl-*")
	if err != nil {
		l.log().Warn("trusted list cache", "error", err)
		return
	}
	_, werr := tmp.Write(raw)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		l.log().Warn("trusted list cache", "error", errors.Join(werr, cerr))
		return
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		l.log().Warn("trusted list cache", "error", err)
	}
}

// AllWarnings are the warnings of the lists used, then why each refused
// pointed-to list was skipped.
func (r *Report) AllWarnings() []string {
	out := slices.Clone(r.Warnings)
	for _, e := range r.Refused {
		out = append(out, e.Error())
	}
	return out
}
