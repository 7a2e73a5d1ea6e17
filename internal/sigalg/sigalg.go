// Package sigalg chooses and encodes the signature algorithm a CA key signs
// with, for the structures Thiqa encodes itself (CRLs, OCSP responses): the
// one crypto/x509 would choose for the key, its AlgorithmIdentifier, and the
// signing of a to-be-signed encoding through a crypto.Signer.
package sigalg

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm is a signature algorithm: ECDSA with the curve's matching hash,
// RSA PKCS#1 v1.5 with SHA-256, or Ed25519.
type Algorithm struct {
	oid        asn1.ObjectIdentifier
	nullParams bool
	hash       crypto.Hash
	x509Alg    x509.SignatureAlgorithm
}

// For returns the algorithm a key of pub's kind signs with.
func For(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return Algorithm{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false, crypto.SHA256, x509.ECDSAWithSHA256}, nil
		case elliptic.P384():
			return Algorithm{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, false, crypto.SHA384, x509.ECDSAWithSHA384}, nil
		case elliptic.P521():
			return Algorithm{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, false, crypto.SHA512, x509.ECDSAWithSHA512}, nil
		}
		return Algorithm{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return Algorithm{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true, crypto.SHA256, x509.SHA256WithRSA}, nil
	case ed25519.PublicKey:
		return Algorithm{asn1.ObjectIdentifier{1, 3, 101, 112}, false, 0, x509.PureEd25519}, nil
	}
	return Algorithm{}, fmt.Errorf("unsupported public key type %T", pub)
}

// X509 is the algorithm as crypto/x509 names it.
func (a Algorithm) X509() x509.SignatureAlgorithm { return a.x509Alg }

// AddAlgorithmIdentifier appends the DER AlgorithmIdentifier of a.
func (a Algorithm) AddAlgorithmIdentifier(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.oid)
		if a.nullParams {
			b.AddASN1NULL()
		}
	})
}

// Sign signs the to-be-signed encoding tbs with s under a.
func (a Algorithm) Sign(s crypto.Signer, tbs []byte) ([]byte, error) {
	if a.hash == 0 {
		return s.Sign(rand.Reader, tbs, crypto.Hash(0))
	}
	h := a.hash.New()
	h.Write(tbs)
	return s.Sign(rand.Reader, h.Sum(nil), a.hash)
}

// ThrowawayKey returns a fresh in-memory key of the same kind as pub, for
// signing the copy of a structure that is linted before the CA key signs
// the real one.
func ThrowawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, 2048)
	case ed25519.PublicKey:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}
