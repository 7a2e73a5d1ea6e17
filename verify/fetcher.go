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
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// HTTPFetcher fetches OCSP responses and CRLs over HTTP with a small
// in-memory cache. It is safe for concurrent use.
type HTTPFetcher struct {
	// Client is the HTTP client (default: one with a 10 s timeout).
	Client *http.Client
	// TTL is how long a fetched value is reused (default 5 min, bounded by
	// the value's nextUpdate).
	TTL time.Duration
	// MaxBytes bounds a response (default 10 MiB).
	MaxBytes int64

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	der     []byte
	expires time.Time
}

// ErrNoLocation means the certificate names no OCSP responder or HTTP CRL
// distribution point.
var ErrNoLocation = errors.New("verify: no revocation location")

func (h *HTTPFetcher) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
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
	exp := time.Now().Add(ttl)
	if !next.IsZero() && next.Before(exp) {
		exp = next
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache == nil {
		h.cache = map[[32]byte]cached{}
	}
	if len(h.cache) > 10000 {
		for k, v := range h.cache {
			if time.Now().After(v.expires) {
				delete(h.cache, k)
			}
		}
	}
	h.cache[key] = cached{der: der, expires: exp}
}

func (h *HTTPFetcher) do(req *http.Request) ([]byte, error) {
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verify: %s answered %s", req.URL.Redacted(), resp.Status)
	}
	max := h.MaxBytes
	if max <= 0 {
		max = 10 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("verify: response from %s too large", req.URL.Redacted())
	}
	return b, nil
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
	reqDER, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("building OCSP request: %w", err)
	}
	var lastErr error = ErrNoLocation
	for _, u := range cert.OCSPServer {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(reqDER))
		if err != nil {
			lastErr = err
			continue
		}
		req.Header.Set("Content-Type", "application/ocsp-request")
		der, err := h.do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
		if err != nil {
			lastErr = fmt.Errorf("OCSP response from %s: %w", u, err)
			continue
		}
		h.put(key, der, resp.NextUpdate)
		return der, nil
	}
	return nil, lastErr
}

// FetchCRL implements RevocationFetcher.
func (h *HTTPFetcher) FetchCRL(ctx context.Context, cert *x509.Certificate) ([]byte, error) {
	var lastErr error = ErrNoLocation
	for _, u := range cert.CRLDistributionPoints {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			continue
		}
		key := sha256.Sum256([]byte("crl" + u))
		if der, ok := h.get(key); ok {
			return der, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			lastErr = err
			continue
		}
		der, err := h.do(req)
		if err != nil {
			lastErr = err
			continue
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			lastErr = fmt.Errorf("CRL from %s: %w", u, err)
			continue
		}
		h.put(key, der, crl.NextUpdate)
		return der, nil
	}
	return nil, lastErr
}

// NewOnline is New for a verifier that fetches revocation information
// itself: when o.AllowOnline and o.Fetcher is nil, its fetches go through
// one cached HTTPFetcher (values reused for 5 minutes) whose client is
// bounded by o.FetchTimeout. `thiqa verify` and `thiqa serve` build theirs
// so.
func NewOnline(o Options) *Verifier {
	if o.AllowOnline && o.Fetcher == nil {
		o.Fetcher = &HTTPFetcher{Client: &http.Client{Timeout: o.FetchTimeout}, TTL: 5 * time.Minute}
	}
	return New(o)
}
