package path

import (
	"bytes"
	"crypto/x509"
	"sync"
)

// CertificateCache remembers parsed certificates by their DER bytes, so a
// long-running verifier parses the certificates every document of a
// deployment carries (its CAs, TSA and OCSP responders, in the CMS and the
// DSS) once, not once per document. A hit returns the very certificate
// parsed before: callers must treat certificates as read-only, as they
// already must for x509.Certificate values shared between paths. Only
// successful parses are kept. Bounded in certificates and in bytes
// (maxCachedBytes): a full cache is emptied, and a certificate larger
// than maxCachedCertificate is parsed every time, never kept, so that
// documents carrying huge certificates (anyone can make one) do not keep
// their bytes alive between requests. Safe for concurrent use; a nil
// cache parses every time.
type CertificateCache struct {
	mu    sync.Mutex
	m     map[string]*x509.Certificate
	max   int
	bytes int // what the entries keep alive: each key and certificate's Raw
}

// maxCachedBytes bounds the bytes a CertificateCache keeps alive.
const maxCachedBytes = 16 << 20

// maxCachedCertificate is the largest certificate a CertificateCache
// keeps; real ones are a few KiB.
const maxCachedCertificate = 64 << 10

// NewCertificateCache returns a cache holding at most n certificates (at
// least one).
func NewCertificateCache(n int) *CertificateCache {
	return &CertificateCache{m: make(map[string]*x509.Certificate), max: max(n, 1)}
}

// Parse returns the certificate of der (ParseCertificate), from the cache
// when it was parsed before.
func (c *CertificateCache) Parse(der []byte) (*x509.Certificate, error) {
	if c == nil {
		return ParseCertificate(der)
	}
	c.mu.Lock()
	cert, ok := c.m[string(der)]
	c.mu.Unlock()
	if ok {
		return cert, nil
	}
	// A private copy: the certificate's Raw fields must not pin the
	// buffer der was cut from (a whole CMS structure or document).
	cert, err := ParseCertificate(bytes.Clone(der))
	if err != nil {
		return nil, err
	}
	if len(der) > maxCachedCertificate {
		return cert, nil
	}
	cost := 2 * len(der) // the key, and the certificate's own copy
	c.mu.Lock()
	if _, ok := c.m[string(der)]; ok {
		cost = 0 // parsed meanwhile by another caller
	}
	if len(c.m) >= c.max || c.bytes+cost > maxCachedBytes {
		clear(c.m)
		c.bytes, cost = 0, 2*len(der)
	}
	c.m[string(der)] = cert
	c.bytes += cost
	c.mu.Unlock()
	return cert, nil
}
