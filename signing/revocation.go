package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxCRLBytes bounds a CRL fetched for the DSS.
const maxCRLBytes = 64 << 20

// RevocationFetcher is the signer's RevocationSource over HTTP: OCSP from
// the certificate's AIA responder, CRLs from the distribution points named
// by the certificates the issuer signed. Answers are cached until halfway
// to their nextUpdate (at most 5 minutes), so that sealing at B-LT does not
// ask the responder for the same certificates thousands of times a second.
type RevocationFetcher struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	crlURLs map[string][]string // issuer subject (raw) → CRL URLs
	cache   map[[32]byte]cachedRevocation
}

type cachedRevocation struct {
	der     []byte
	expires time.Time
}

// maxRevocationCache bounds the cache; it is cleared when full.
const maxRevocationCache = 10000

// NewRevocationFetcher returns a fetcher that asks over client (with its
// transport: the deployment's own responder may answer in process), knowing
// the CRL distribution points the CA certificates caCerts name; now is the
// clock of its cache.
func NewRevocationFetcher(client *http.Client, caCerts []*x509.Certificate, now func() time.Time) *RevocationFetcher {
	f := &RevocationFetcher{client: client, now: now, crlURLs: map[string][]string{}, cache: map[[32]byte]cachedRevocation{}}
	for _, c := range caCerts {
		f.learn(c)
	}
	return f
}

// learn remembers where the issuer of c publishes its CRL.
func (f *RevocationFetcher) learn(c *x509.Certificate) {
	if len(c.CRLDistributionPoints) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.crlURLs[string(c.RawIssuer)]; !ok {
		f.crlURLs[string(c.RawIssuer)] = c.CRLDistributionPoints
	}
}

func (f *RevocationFetcher) cached(key [32]byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.cache[key]; ok && f.now().Before(e.expires) {
		return e.der
	}
	return nil
}

func (f *RevocationFetcher) keep(key [32]byte, der []byte, thisUpdate, nextUpdate time.Time) {
	ttl := 5 * time.Minute
	if !nextUpdate.IsZero() {
		if half := nextUpdate.Sub(thisUpdate) / 2; half < ttl {
			ttl = half
		}
	}
	if ttl <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= maxRevocationCache {
		clear(f.cache)
	}
	f.cache[key] = cachedRevocation{der: der, expires: f.now().Add(ttl)}
}

// OCSP asks cert's OCSP responder about cert. A revoked certificate is an
// error: nothing is signed with or on top of it.
func (f *RevocationFetcher) OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	f.learn(cert)
	if len(cert.OCSPServer) == 0 {
		return nil, errors.New("certificate names no OCSP responder")
	}
	// A fresh buffer: appending to cert.RawIssuer would write into cert.Raw.
	k := make([]byte, 0, 5+len(cert.RawIssuer)+20)
	k = append(append(append(k, "ocsp\x00"...), cert.RawIssuer...), cert.SerialNumber.Bytes()...)
	key := sha256.Sum256(k)
	if der := f.cached(key); der != nil {
		return der, nil
	}
	reqDER, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, fmt.Errorf("building OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cert.OCSPServer[0], bytes.NewReader(reqDER))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	der, err := f.fetch(req, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("OCSP %s: %w", cert.OCSPServer[0], err)
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("OCSP %s: %w", cert.OCSPServer[0], err)
	}
	switch resp.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return nil, fmt.Errorf("certificate %q is revoked", cert.Subject.String())
	default:
		return nil, fmt.Errorf("OCSP status of %q is unknown", cert.Subject.String())
	}
	f.keep(key, der, resp.ThisUpdate, resp.NextUpdate)
	return der, nil
}

// CRL fetches the current CRL of issuer.
func (f *RevocationFetcher) CRL(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
	f.mu.Lock()
	urls := f.crlURLs[string(issuer.RawSubject)]
	f.mu.Unlock()
	if len(urls) == 0 {
		return nil, fmt.Errorf("no CRL distribution point known for %q", issuer.Subject.String())
	}
	key := sha256.Sum256(append([]byte("crl\x00"), issuer.RawSubject...))
	if der := f.cached(key); der != nil {
		return der, nil
	}
	var errs []error
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		der, err := f.fetch(req, maxCRLBytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil || rl.CheckSignatureFrom(issuer) != nil {
			errs = append(errs, fmt.Errorf("%s: not a CRL signed by %q", u, issuer.Subject.String()))
			continue
		}
		f.keep(key, der, rl.ThisUpdate, rl.NextUpdate)
		return der, nil
	}
	return nil, errors.Join(errs...)
}

func (f *RevocationFetcher) fetch(req *http.Request, limit int64) ([]byte, error) {
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("reply too large")
	}
	return b, nil
}

// Issuer fetches cert's issuer certificate from its AIA caIssuers URL (a
// DER certificate; PEM and PKCS#7 bundles are not read), for extensions of
// documents signed elsewhere (signer.IssuerFetcher).
func (f *RevocationFetcher) Issuer(ctx context.Context, cert *x509.Certificate) (*x509.Certificate, error) {
	if len(cert.IssuingCertificateURL) == 0 {
		return nil, errors.New("no caIssuers URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cert.IssuingCertificateURL[0], nil)
	if err != nil {
		return nil, err
	}
	der, err := f.fetch(req, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("caIssuers %s: %w", cert.IssuingCertificateURL[0], err)
	}
	return x509.ParseCertificate(der)
}
