package signer

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxCacheEntries bounds a Cache; it is cleared when full.
const maxCacheEntries = 4096

// Cache remembers, across signatures, facts that do not change between
// them: whether a certificate is self-signed (a signature check each time
// otherwise: about 0.5 ms for a P-384 root, on every B-LT signature), and
// how large a key's signatures are, so that the /Contents placeholder is
// sized to them rather than to the worst case (12 KB more for a time-stamp:
// a bigger file to write, send and read), and the certificates parsed from
// signatures and time-stamp tokens. It is safe for concurrent use and
// bounded, in entries and in certificate bytes. Create one with NewCache,
// keep it as long as the signing service, and set it in
// ValidationOptions.Cache.
type Cache struct {
	mu         sync.Mutex
	selfSigned map[[32]byte]bool
	sigSize    map[[32]byte]int // largest CMS seen per placeholderKey
	certs      map[[32]byte]*x509.Certificate
	certBytes  int // the certificates' Raw bytes that certs keeps alive
}

// maxCachedCertBytes bounds the certificate bytes a Cache keeps alive, and
// maxCachedCert the size of a certificate it keeps: the certificates come
// from the documents callers send to be extended, and anyone can make one
// of megabytes.
const (
	maxCachedCertBytes = 8 << 20
	maxCachedCert      = 64 << 10
)

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{selfSigned: map[[32]byte]bool{}, sigSize: map[[32]byte]int{}, certs: map[[32]byte]*x509.Certificate{}}
}

// parseCertificate is x509.ParseCertificate, remembered by DER when the
// cache is set: the chains in signatures and time-stamp tokens are the same
// few certificates again and again. The certificates are shared: callers
// only read them.
func (k *Cache) parseCertificate(der []byte) (*x509.Certificate, error) {
	if k == nil {
		return x509.ParseCertificate(der)
	}
	key := sha256.Sum256(der)
	k.mu.Lock()
	c := k.certs[key]
	k.mu.Unlock()
	if c != nil {
		return c, nil
	}
	// A private copy: the certificate's Raw fields alias what it is
	// parsed from (a signature's CMS, the caller's buffer), which the
	// shared entry must neither see change nor keep alive.
	c, err := x509.ParseCertificate(bytes.Clone(der))
	if err != nil {
		return nil, err // not remembered: bad input is rare and varied
	}
	if len(der) > maxCachedCert {
		return c, nil
	}
	k.mu.Lock()
	if len(k.certs) >= maxCacheEntries/4 || k.certBytes+len(der) > maxCachedCertBytes {
		clear(k.certs)
		k.certBytes = 0
	}
	if _, ok := k.certs[key]; !ok {
		k.certBytes += len(der)
	}
	k.certs[key] = c
	k.mu.Unlock()
	return c, nil
}

// placeholderMargin is the room left above the largest signature seen for
// the same key: ECDSA values, time-stamp serials and times vary by a few
// bytes. A signature that still does not fit is made again once with a
// larger placeholder.
const placeholderMargin = 512

// placeholderKey names the signatures whose CMS sizes are alike: same
// signer certificate, hash, padding and time-stamp or not.
func placeholderKey(cert *x509.Certificate, h crypto.Hash, timestamped, pss bool) [32]byte {
	d := sha256.New()
	d.Write(cert.Raw)
	d.Write([]byte{byte(h), boolByte(timestamped), boolByte(pss)})
	var k [32]byte
	d.Sum(k[:0])
	return k
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// placeholder returns the /Contents size (bytes) for signatures of key,
// once one of them has been seen.
func (k *Cache) placeholder(key [32]byte) (int, bool) {
	if k == nil {
		return 0, false
	}
	k.mu.Lock()
	n, ok := k.sigSize[key]
	k.mu.Unlock()
	return n + placeholderMargin, ok
}

// observeSignature remembers the size of a CMS made for key.
func (k *Cache) observeSignature(key [32]byte, size int) {
	if k == nil {
		return
	}
	k.mu.Lock()
	if len(k.sigSize) >= maxCacheEntries {
		clear(k.sigSize)
	}
	if size > k.sigSize[key] {
		k.sigSize[key] = size
	}
	k.mu.Unlock()
}

// isSelfSigned is selfSigned(c), remembered by c's DER when the cache is set.
func (k *Cache) isSelfSigned(c *x509.Certificate) bool {
	// Cheap refusals need no memory.
	if !quickSelfSignedCandidate(c) {
		return false
	}
	if k == nil {
		return selfSigned(c)
	}
	key := sha256.Sum256(c.Raw)
	k.mu.Lock()
	v, ok := k.selfSigned[key]
	k.mu.Unlock()
	if ok {
		return v
	}
	v = selfSigned(c)
	k.mu.Lock()
	if len(k.selfSigned) >= maxCacheEntries {
		clear(k.selfSigned)
	}
	k.selfSigned[key] = v
	k.mu.Unlock()
	return v
}

// quickSelfSignedCandidate is false for a certificate that cannot be
// self-signed (its issuer is another name).
func quickSelfSignedCandidate(c *x509.Certificate) bool {
	return string(c.RawSubject) == string(c.RawIssuer)
}

// ocspCertificates returns the DER certificates an OCSP response carries in
// its BasicOCSPResponse (RFC 6960 §4.2.1: certs [0] EXPLICIT SEQUENCE OF
// Certificate), without checking anything: they only go into the DSS, and
// relying parties verify what they use. Malformed input yields nil.
func ocspCertificates(der []byte) [][]byte {
	in := cryptobyte.String(der)
	var resp, status, rb, basic cryptobyte.String
	var tagged cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) ||
		!resp.ReadASN1(&status, cbasn1.ENUM) ||
		!resp.ReadASN1(&tagged, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tagged.ReadASN1(&rb, cbasn1.SEQUENCE) ||
		!rb.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!rb.ReadASN1(&basic, cbasn1.OCTET_STRING) {
		return nil
	}
	var body, certsTagged, certs cryptobyte.String
	if !basic.ReadASN1(&body, cbasn1.SEQUENCE) ||
		!body.SkipASN1(cbasn1.SEQUENCE) || // tbsResponseData
		!body.SkipASN1(cbasn1.SEQUENCE) || // signatureAlgorithm
		!body.SkipASN1(cbasn1.BIT_STRING) { // signature
		return nil
	}
	if body.Empty() {
		return nil
	}
	if !body.ReadASN1(&certsTagged, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!certsTagged.ReadASN1(&certs, cbasn1.SEQUENCE) {
		return nil
	}
	var out [][]byte
	for !certs.Empty() {
		var cert cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&cert, &tag) {
			return nil
		}
		if tag == cbasn1.SEQUENCE {
			out = append(out, cert)
		}
	}
	return out
}
