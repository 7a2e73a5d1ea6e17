package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// ErrBadCSR is wrapped by every error about an unparsable CSR or one whose
// signature (proof of possession) does not verify.
var ErrBadCSR = errors.New("bad certificate signing request")

// WeakKeyError refuses a subject key: wrong algorithm, curve or size, or a
// weak RSA modulus.
type WeakKeyError struct {
	// Reason says what is wrong with the key.
	Reason string
}

// Error implements the error interface.
func (e *WeakKeyError) Error() string { return "unacceptable public key: " + e.Reason }

// smallPrimesProduct is the product of the odd primes below 1000; a modulus
// sharing a factor with it is trivially factorable.
func smallPrimesProduct() *big.Int {
	p := big.NewInt(1)
	for n := int64(3); n < 1000; n += 2 {
		if big.NewInt(n).ProbablyPrime(0) {
			p.Mul(p, big.NewInt(n))
		}
	}
	return p
}

// keyType classifies pub as one of the profile key types.
func keyType(pub crypto.PublicKey) (policies.KeyType, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return policies.KeyECDSAP256, nil
		case elliptic.P384():
			return policies.KeyECDSAP384, nil
		}
		return "", &WeakKeyError{Reason: fmt.Sprintf("EC curve %s not accepted (P-256 or P-384 only)", k.Curve.Params().Name)}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return policies.KeyRSA2048, nil
		case 3072:
			return policies.KeyRSA3072, nil
		case 4096:
			return policies.KeyRSA4096, nil
		}
		return "", &WeakKeyError{Reason: fmt.Sprintf("RSA modulus of %d bits not accepted (2048, 3072 or 4096)", k.N.BitLen())}
	}
	return "", &WeakKeyError{Reason: fmt.Sprintf("key algorithm %T not accepted (ECDSA or RSA only)", pub)}
}

// checkKey refuses weak or unsupported keys: EC keys must be P-256/P-384
// points on the curve; RSA keys 2048/3072/4096 bits, e = 65537, an odd
// modulus without small prime factors. primes may be nil (computed here).
func checkKey(pub crypto.PublicKey, primes *big.Int) error {
	if _, err := keyType(pub); err != nil {
		return err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.X == nil || k.Y == nil {
			return &WeakKeyError{Reason: "EC point missing"}
		}
		if _, err := k.ECDH(); err != nil { // rejects points off the curve and the identity
			return &WeakKeyError{Reason: "EC point is not on the curve"}
		}
	case *rsa.PublicKey:
		if k.E != 65537 {
			return &WeakKeyError{Reason: fmt.Sprintf("RSA public exponent %d (want 65537)", k.E)}
		}
		if k.N.Bit(0) == 0 {
			return &WeakKeyError{Reason: "RSA modulus is even"}
		}
		if primes == nil {
			primes = smallPrimesProduct()
		}
		if new(big.Int).GCD(nil, nil, k.N, primes).Cmp(big.NewInt(1)) != 0 {
			return &WeakKeyError{Reason: "RSA modulus has a small prime factor"}
		}
	}
	return nil
}

// parseCSR accepts a PEM ("CERTIFICATE REQUEST") or DER PKCS#10 request and
// checks its self-signature (proof of possession).
func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	der := b
	if blk, rest := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block %q, want CERTIFICATE REQUEST", ErrBadCSR, blk.Type)
		}
		if strings.TrimSpace(string(rest)) != "" {
			return nil, fmt.Errorf("%w: trailing data after the PEM block", ErrBadCSR)
		}
		der = blk.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify (no proof of possession): %v", ErrBadCSR, err)
	}
	return csr, nil
}

// newSerial returns a positive 128-bit serial from the CSPRNG r: 16 bytes
// with the top bit cleared, so 127 random bits, never zero, at most 16 octets.
func newSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("reading serial randomness: %w", err)
		}
		b[0] &= 0x7f
		if b[0] != 0 { // keep 16 octets so every serial has the same length
			return new(big.Int).SetBytes(b[:]), nil
		}
	}
}

// cleanBaseURL checks the public base URL and drops a trailing slash.
func cleanBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("public base URL %q must be an absolute http(s) URL", s)
	}
	return strings.TrimRight(s, "/"), nil
}
