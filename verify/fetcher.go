package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// HTTPFetcher fetches OCSP responses and CRLs over HTTP with a small
// in-memory cache. It is safe for concurrent use.
type HTTPFetcher struct {
	// Client is the HTTP client (default: one with a 10 s timeout that
	// follows at most 3 redirects).
	Client *http.Client
	// TTL is how long a fetched value is reused (default 5 min, bounded by
	// the value's nextUpdate).
	TTL time.Duration
	// MaxBytes bounds a response (default 10 MiB).
	MaxBytes int64
	// MaxCacheBytes bounds the bytes the cache holds (default 64 MiB);
	// MaxCacheEntries the values (default 4096). A full cache drops expired
	// values first, then those expiring soonest.
	MaxCacheBytes   int64
	MaxCacheEntries int
	// MaxConcurrent bounds the requests in flight at once over all callers
	// (default 8); a request waits for a free slot within its context.
	MaxConcurrent int
	// MaxURLs bounds the locations tried for one certificate and kind
	// (default 3): a certificate naming more has the rest ignored.
	MaxURLs int

	mu         sync.Mutex
	cache      map[[32]byte]cached
	cacheBytes int64
	slots      chan struct{}
}

type cached struct {
	der     []byte
	expires time.Time
}

// ErrNoLocation means the certificate names no OCSP responder or HTTP CRL
// distribution point.
var ErrNoLocation = errors.New("verify: no revocation location")

// ErrFetchLimit means the online fetches allowed for one document
// (Options.MaxFetchesPerDocument, within 4 times Options.FetchTimeout)
// were all spent.
var ErrFetchLimit = errors.New("verify: online fetch limit of the document reached")

// FetchError is a failed online fetch: the location and the cause. Its
// message names both, for the operator's log and the CLI; a public
// verification service reports only that the fetch failed.
type FetchError struct {
	// URL is the location asked (redacted of user information).
	URL string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *FetchError) Error() string { return e.URL + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

func (h *HTTPFetcher) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: checkRedirect}
}

func (h *HTTPFetcher) get(key [32]byte) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.cache[key]
	if !ok || time.Now().After(c.expires) {
		return nil, false
	}
	return c.der, true
}

func (h *HTTPFetcher) put(key [32]byte, der []byte, next time.Time) {
	ttl := h.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	now := time.Now()
	exp := now.Add(ttl)
	if !next.IsZero() && next.Before(exp) {
		exp = next
	}
	if !exp.After(now) {
		return // already stale: nothing to reuse
	}
	maxBytes := h.MaxCacheBytes
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	maxEntries := h.MaxCacheEntries
	if maxEntries <= 0 {
		maxEntries = 4096
	}
	size := int64(len(der))
	if size > maxBytes {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache == nil {
		h.cache = map[[32]byte]cached{}
	}
	if old, ok := h.cache[key]; ok {
		delete(h.cache, key)
		h.cacheBytes -= int64(len(old.der))
	}
	if len(h.cache) >= maxEntries || h.cacheBytes+size > maxBytes {
		for k, v := range h.cache {
			if now.After(v.expires) {
				delete(h.cache, k)
				h.cacheBytes -= int64(len(v.der))
			}
		}
	}
	for len(h.cache) >= maxEntries || h.cacheBytes+size > maxBytes {
		var victim [32]byte
		var soonest time.Time
		for k, v := range h.cache {
			if soonest.IsZero() || v.expires.Before(soonest) {
				victim, soonest = k, v.expires
			}
		}
		h.cacheBytes -= int64(len(h.cache[victim].der))
		delete(h.cache, victim)
	}
	h.cache[key] = cached{der: der, expires: exp}
	h.cacheBytes += size
}

// acquire takes a request slot, waiting at most as long as ctx allows.
func (h *HTTPFetcher) acquire(ctx context.Context) (func(), error) {
	h.mu.Lock()
	if h.slots == nil {
		n := h.MaxConcurrent
		if n <= 0 {
			n = 8
		}
		h.slots = make(chan struct{}, n)
	}
	slots := h.slots
	h.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free fetch slot: %w", ctx.Err())
	}
}

func (h *HTTPFetcher) do(req *http.Request) ([]byte, error) {
	loc := req.URL.Redacted()
	if err := spendFetch(req.Context()); err != nil {
		return nil, err
	}
	release, err := h.acquire(req.Context())
	if err != nil {
		return nil, &FetchError{URL: loc, Err: err}
	}
	defer release()
	resp, err := h.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // FetchError names the location already
		}
		return nil, &FetchError{URL: loc, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &FetchError{URL: loc, Err: fmt.Errorf("answered %s", resp.Status)}
	}
	max := h.MaxBytes
	if max <= 0 {
		max = 10 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &FetchError{URL: loc, Err: err}
	}
	if int64(len(b)) > max {
		return nil, &FetchError{URL: loc, Err: fmt.Errorf("response larger than %d bytes", max)}
	}
	return b, nil
}

// locations returns the http(s) URLs of urls, at most MaxURLs of them.
func (h *HTTPFetcher) locations(urls []string) []string {
	n := h.MaxURLs
	if n <= 0 {
		n = 3
	}
	var out []string
	for _, u := range urls {
		if len(out) == n {
			break
		}
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			out = append(out, u)
		}
	}
	return out
}

// FetchOCSP implements RevocationFetcher.
func (h *HTTPFetcher) FetchOCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	// Never append to the certificate's own slices: they alias its Raw bytes.
	var kb []byte
	kb = append(kb, "ocsp"...)
	kb = append(kb, issuer.RawSubject...)
	kb = append(kb, issuer.RawSubjectPublicKeyInfo...)
	kb = append(kb, cert.SerialNumber.Bytes()...)
	key := sha256.Sum256(kb)
	if der, ok := h.get(key); ok {
		return der, nil
	}
	d := docFetchesOf(ctx)
	if der := d.unknownOCSP(key); der != nil {
		return der, nil
	}
	reqDER, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("building OCSP request: %w", err)
	}
	var lastErr error = ErrNoLocation
	for _, u := range h.locations(cert.OCSPServer) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(reqDER))
		if err != nil {
			lastErr = &FetchError{URL: u, Err: err}
			continue
		}
		req.Header.Set("Content-Type", "application/ocsp-request")
		der, err := h.do(req)
		if errors.Is(err, ErrFetchLimit) {
			return nil, err
		}
		if err != nil {
			lastErr = err
			continue
		}
		resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
		if err != nil {
			lastErr = &FetchError{URL: req.URL.Redacted(), Err: fmt.Errorf("unusable OCSP response: %w", err)}
			continue
		}
		if resp.Status != ocsp.Unknown {
			h.put(key, der, resp.NextUpdate)
		} else {
			// "unknown" is not kept for other documents: the
			// responder may know the serial a moment later (it does
			// not cache it either). This document's other looks
			// (its validation at a proof of existence, its other
			// signatures) reuse it rather than ask again.
			d.keepUnknownOCSP(key, der)
		}
		return der, nil
	}
	return nil, lastErr
}

// FetchCRL implements RevocationFetcher.
func (h *HTTPFetcher) FetchCRL(ctx context.Context, cert *x509.Certificate) ([]byte, error) {
	var lastErr error = ErrNoLocation
	for _, u := range h.locations(cert.CRLDistributionPoints) {
		key := sha256.Sum256([]byte("crl" + u))
		if der, ok := h.get(key); ok {
			return der, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			lastErr = &FetchError{URL: u, Err: err}
			continue
		}
		der, err := h.do(req)
		if errors.Is(err, ErrFetchLimit) {
			return nil, err
		}
		if err != nil {
			lastErr = err
			continue
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			lastErr = &FetchError{URL: req.URL.Redacted(), Err: fmt.Errorf("unusable CRL: %w", err)}
			continue
		}
		h.put(key, der, crl.NextUpdate)
		return der, nil
	}
	return nil, lastErr
}

// docFetches is the online fetching of one document: the requests it may
// still send and until when, and the fetches that failed (with their
// warnings), which are not tried again for the document's other signatures
// and paths.
type docFetches struct {
	mu       sync.Mutex
	left     int
	total    time.Duration
	deadline time.Time // total after the first fetch
	failed   map[[32]byte][]string
	// unknown holds the OCSP answers "unknown" fetched for the
	// document, which HTTPFetcher does not cache.
	unknown map[[32]byte][]byte
}

// unknownOCSP returns the "unknown" OCSP answer fetched for the document
// under key, or nil (also for a nil d: no document).
func (d *docFetches) unknownOCSP(key [32]byte) []byte {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unknown[key]
}

// keepUnknownOCSP keeps an "unknown" OCSP answer for the rest of the
// document's validation (nothing for a nil d).
func (d *docFetches) keepUnknownOCSP(key [32]byte, der []byte) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unknown == nil {
		d.unknown = map[[32]byte][]byte{}
	}
	d.unknown[key] = der
}

// until returns the time the document's online fetching must end by,
// starting the clock at its first fetch. The caller holds d.mu.
func (d *docFetches) until() time.Time {
	if d.deadline.IsZero() {
		d.deadline = time.Now().Add(d.total)
	}
	return d.deadline
}

type docFetchesKey struct{}

// withFetchBudget returns ctx carrying a budget of n online requests
// within total time from the first, which HTTPFetcher spends (cache hits
// are free).
func withFetchBudget(ctx context.Context, n int, total time.Duration) context.Context {
	return context.WithValue(ctx, docFetchesKey{}, &docFetches{left: n, total: total})
}

func docFetchesOf(ctx context.Context) *docFetches {
	d, _ := ctx.Value(docFetchesKey{}).(*docFetches)
	return d
}

// spendFetch takes one request from ctx's budget, if it carries one.
func spendFetch(ctx context.Context) error {
	d := docFetchesOf(ctx)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.left <= 0 || !time.Now().Before(d.until()) {
		return ErrFetchLimit
	}
	d.left--
	return nil
}

// NewOnline is New for a verifier that fetches revocation information
// itself: when o.AllowOnline and o.Fetcher is nil, its fetches go through
// one cached HTTPFetcher (values reused for 5 minutes) whose client is
// bounded by o.FetchTimeout and follows at most 3 redirects; for a Public
// verifier that client is GuardedClient(o.FetchTimeout, o.FetchAllowHosts).
// `thiqa verify` and `thiqa serve` build theirs so.
func NewOnline(o Options) *Verifier {
	if o.AllowOnline && o.Fetcher == nil {
		client := &http.Client{Timeout: o.FetchTimeout, CheckRedirect: checkRedirect}
		if o.Public {
			client = GuardedClient(o.FetchTimeout, o.FetchAllowHosts)
		}
		o.Fetcher = &HTTPFetcher{Client: client, TTL: 5 * time.Minute}
	}
	return New(o)
}
