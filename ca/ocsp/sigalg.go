package ocsp

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

// sigAlg is the signature algorithm a CA key signs CRLs with, chosen from
// its public key as crypto/x509 would: ECDSA with the curve's matching hash,
// RSA PKCS#1 v1.5 with SHA-256, or Ed25519.
type sigAlg struct {
	oid        asn1.ObjectIdentifier
	nullParams bool
	hash       crypto.Hash
	x509Alg    x509.SignatureAlgorithm
}

func sigAlgFor(pub crypto.PublicKey) (sigAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return sigAlg{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false, crypto.SHA256, x509.ECDSAWithSHA256}, nil
		case elliptic.P384():
			return sigAlg{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, false, crypto.SHA384, x509.ECDSAWithSHA384}, nil
		case elliptic.P521():
			return sigAlg{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, false, crypto.SHA512, x509.ECDSAWithSHA512}, nil
		}
		return sigAlg{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return sigAlg{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true, crypto.SHA256, x509.SHA256WithRSA}, nil
	case ed25519.PublicKey:
		return sigAlg{asn1.ObjectIdentifier{1, 3, 101, 112}, false, 0, x509.PureEd25519}, nil
	}
	return sigAlg{}, fmt.Errorf("unsupported public key type %T", pub)
}

// addAlgorithmIdentifier appends the AlgorithmIdentifier of a.
func (a sigAlg) addAlgorithmIdentifier(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.oid)
		if a.nullParams {
			b.AddASN1NULL()
		}
	})
}

// sign signs tbs with s under algorithm a.
func (a sigAlg) sign(s crypto.Signer, tbs []byte) ([]byte, error) {
	if a.hash == 0 {
		return s.Sign(rand.Reader, tbs, crypto.Hash(0))
	}
	h := a.hash.New()
	h.Write(tbs)
	return s.Sign(rand.Reader, h.Sum(nil), a.hash)
}
