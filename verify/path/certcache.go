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
// successful parses are kept. Bounded: a full cache is emptied. Safe for
// concurrent use; a nil cache parses every time.
type CertificateCache struct {
	mu  sync.Mutex
	m   map[string]*x509.Certificate
	max int
}

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
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[string(der)] = cert
	c.mu.Unlock()
	return cert, nil
}
