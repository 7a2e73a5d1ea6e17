// Package josesigner lets keys that never leave their token sign JOSE objects:
// it adapts a crypto.Signer (in production a key on the HSM, in tests an
// in-process crypto/ecdsa or crypto/rsa key) to go-jose's jose.OpaqueSigner,
// so JWTs, ID tokens and JWS documents are signed without exporting the key.
package josesigner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
)

// Signer signs JWS payloads with a crypto.Signer using one fixed algorithm.
// It implements jose.OpaqueSigner and is safe for concurrent use when the
// underlying crypto.Signer is.
type Signer struct {
	key     crypto.Signer
	alg     jose.SignatureAlgorithm
	hash    crypto.Hash
	pss     bool
	ecBytes int // size of R and S in bytes for ECDSA; 0 otherwise
	jwk     jose.JSONWebKey
}

// Option adjusts how New builds a Signer.
type Option func(*settings)

type settings struct {
	alg jose.SignatureAlgorithm
}

// WithAlgorithm selects the JWS algorithm instead of the key's default. For
// RSA keys it may be PS256, PS384, PS512, RS256, RS384 or RS512; for ECDSA
// keys it must be the algorithm that matches the curve.
func WithAlgorithm(alg jose.SignatureAlgorithm) Option {
	return func(s *settings) { s.alg = alg }
}

// New wraps s. The algorithm follows from the key: P-256 → ES256, P-384 →
// ES384, P-521 → ES512, RSA → PS256 (see WithAlgorithm for RS256). An empty
// keyID is replaced by the key's RFC 7638 thumbprint (see KeyID).
func New(s crypto.Signer, keyID string, opts ...Option) (*Signer, error) {
	if s == nil {
		return nil, errors.New("josesigner: nil crypto.Signer")
	}
	var set settings
	for _, o := range opts {
		o(&set)
	}
	pub := s.Public()
	out := &Signer{key: s}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		alg, hash, size, err := ecdsaParams(k.Curve)
		if err != nil {
			return nil, err
		}
		if set.alg != "" && set.alg != alg {
			return nil, fmt.Errorf("josesigner: algorithm %s does not fit a %s key (want %s)", set.alg, k.Curve.Params().Name, alg)
		}
		out.alg, out.hash, out.ecBytes = alg, hash, size
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < 2048 {
			return nil, errors.New("josesigner: RSA keys must have at least 2048 bits")
		}
		alg := set.alg
		if alg == "" {
			alg = jose.PS256
		}
		hash, pss, err := rsaParams(alg)
		if err != nil {
			return nil, err
		}
		out.alg, out.hash, out.pss = alg, hash, pss
	default:
		return nil, fmt.Errorf("josesigner: unsupported public key type %T", pub)
	}
	if keyID == "" {
		var err error
		if keyID, err = KeyID(pub); err != nil {
			return nil, err
		}
	}
	out.jwk = PublicJWK(pub, keyID, string(out.alg))
	return out, nil
}

func ecdsaParams(c elliptic.Curve) (jose.SignatureAlgorithm, crypto.Hash, int, error) {
	switch c {
	case elliptic.P256():
		return jose.ES256, crypto.SHA256, 32, nil
	case elliptic.P384():
		return jose.ES384, crypto.SHA384, 48, nil
	case elliptic.P521():
		return jose.ES512, crypto.SHA512, 66, nil
	}
	return "", 0, 0, fmt.Errorf("josesigner: unsupported elliptic curve %v", c.Params().Name)
}

func rsaParams(alg jose.SignatureAlgorithm) (crypto.Hash, bool, error) {
	switch alg {
	case jose.PS256:
		return crypto.SHA256, true, nil
	case jose.PS384:
		return crypto.SHA384, true, nil
	case jose.PS512:
		return crypto.SHA512, true, nil
	case jose.RS256:
		return crypto.SHA256, false, nil
	case jose.RS384:
		return crypto.SHA384, false, nil
	case jose.RS512:
		return crypto.SHA512, false, nil
	}
	return 0, false, fmt.Errorf("josesigner: algorithm %q does not fit an RSA key", alg)
}

// Public returns the public key as a JWK carrying the key ID and algorithm.
// go-jose copies its KeyID into the "kid" header of what it signs.
func (s *Signer) Public() *jose.JSONWebKey {
	k := s.jwk
	return &k
}

// Algs returns the one algorithm this Signer produces.
func (s *Signer) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{s.alg}
}

// Algorithm returns the JWS algorithm this Signer produces.
func (s *Signer) Algorithm() jose.SignatureAlgorithm { return s.alg }

// KeyID returns the key ID put into the "kid" header.
func (s *Signer) KeyID() string { return s.jwk.KeyID }

// SignPayload signs the JWS signing input with the wrapped key and returns
// the JWS signature value (R||S for ECDSA, the raw RSA signature otherwise).
func (s *Signer) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != s.alg {
		return nil, fmt.Errorf("josesigner: key signs %s, not %s", s.alg, alg)
	}
	h := s.hash.New()
	h.Write(payload)
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = s.hash
	if s.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.hash}
	}
	sig, err := s.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("josesigner: signing with key %s: %w", s.jwk.KeyID, err)
	}
	if s.ecBytes == 0 {
		return sig, nil
	}
	return derToRS(sig, s.ecBytes)
}

// derToRS turns an ASN.1 ECDSA-Sig-Value into the fixed-size R||S form that
// JWS (RFC 7518 section 3.4) uses.
func derToRS(der []byte, size int) ([]byte, error) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return nil, fmt.Errorf("josesigner: parsing ECDSA signature: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("josesigner: trailing data after ECDSA signature")
	}
	if v.R.Sign() <= 0 || v.S.Sign() <= 0 || len(v.R.Bytes()) > size || len(v.S.Bytes()) > size {
		return nil, errors.New("josesigner: ECDSA signature values out of range")
	}
	out := make([]byte, 2*size)
	v.R.FillBytes(out[:size])
	v.S.FillBytes(out[size:])
	return out, nil
}

// PublicJWK describes pub as a signing JWK ("use":"sig") with the given key
// ID and algorithm (either may be empty).
func PublicJWK(pub crypto.PublicKey, keyID, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: keyID, Algorithm: alg, Use: "sig"}
}

// KeyID returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of pub: the default key ID of Thiqa's signing keys.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("josesigner: computing JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

var _ jose.OpaqueSigner = (*Signer)(nil)
