package path

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
)

// SignatureCache remembers signatures that verified, so that a long-running
// verifier checks the signature of a CA certificate, a CRL or an OCSP
// response once, not once per document. Only successes are kept, keyed by
// SHA-256 over the algorithm, the signer's public key, the signed digest and
// the signature value: a hit means exactly that signature over exactly that
// digest was checked with exactly that key. The algorithm policy is applied
// on every call, cached or not. Bounded: a full cache is emptied. Safe for
// concurrent use.
type SignatureCache struct {
	mu  sync.Mutex
	m   map[[32]byte]struct{}
	max int
}

// NewSignatureCache returns a cache holding at most max signatures.
func NewSignatureCache(max int) *SignatureCache {
	if max < 1 {
		max = 1
	}
	return &SignatureCache{m: make(map[[32]byte]struct{}), max: max}
}

// Len reports how many signatures the cache holds.
func (c *SignatureCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *SignatureCache) seen(k [32]byte) bool {
	c.mu.Lock()
	_, ok := c.m[k]
	c.mu.Unlock()
	return ok
}

func (c *SignatureCache) add(k [32]byte) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = struct{}{}
	c.mu.Unlock()
}

// publicKeyIdentity encodes exactly what identifies pub: the curve and the
// point of an ECDSA key, the modulus and exponent of an RSA key (without the
// DER encoding of a SubjectPublicKeyInfo, which costs more than the rest of
// a cache hit), and the SPKI for anything else; nil when it cannot.
func publicKeyIdentity(pub any) []byte {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == nil || k.X == nil || k.Y == nil {
			return nil
		}
		p := k.Curve.Params()
		size := (p.BitSize + 7) / 8
		if k.X.Sign() < 0 || k.Y.Sign() < 0 || k.X.BitLen() > p.BitSize || k.Y.BitLen() > p.BitSize {
			return nil
		}
		prefix := "ecdsa/" + p.Name + "/"
		b := make([]byte, len(prefix)+2*size)
		n := copy(b, prefix)
		k.X.FillBytes(b[n : n+size])
		k.Y.FillBytes(b[n+size:])
		return b
	case *rsa.PublicKey:
		if k.N == nil {
			return nil
		}
		return binary.BigEndian.AppendUint64(append([]byte("rsa/"), k.N.Bytes()...), uint64(k.E))
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return append([]byte("spki/"), spki...)
}

// signatureKey derives the cache key; ok is false when the public key
// cannot be encoded (then nothing is cached).
func signatureKey(alg x509.SignatureAlgorithm, pub any, digest, sig []byte) ([32]byte, bool) {
	spki := publicKeyIdentity(pub)
	if spki == nil {
		return [32]byte{}, false
	}
	h := sha256.New()
	var n [8]byte
	h.Write([]byte("thiqa-verified-signature-v2"))
	for _, part := range [][]byte{binary.BigEndian.AppendUint64(n[:0], uint64(alg)), spki, digest, sig} {
		h.Write(binary.BigEndian.AppendUint64(n[:0], uint64(len(part))))
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k, true
}
