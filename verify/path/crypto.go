package path

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // verifying legacy DSA signatures (PKITS) only
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// AlgorithmPolicy holds the algorithm constraints (ETSI TS 119 312 style):
// which hashes are acceptable for signatures and the minimum key sizes.
type AlgorithmPolicy struct {
	// MinRSABits is the smallest acceptable RSA modulus (default 2048).
	MinRSABits int
	// AllowSHA1 accepts SHA-1 in signatures (never the default).
	AllowSHA1 bool
	// AllowDSA accepts DSA signatures (legacy; tests only).
	AllowDSA bool
	// AllowMD5 accepts MD5 (only to tell intact legacy signatures from
	// broken ones; never for a passing verdict).
	AllowMD5 bool
	// SHA1CertsBefore accepts SHA-1 in certificate (and CRL) signatures
	// when the validation time is before it (TS 119 312 permits relying on
	// SHA-1 signatures proven to exist while SHA-1 was acceptable).
	SHA1CertsBefore time.Time
	// MinECBits is the smallest acceptable elliptic curve (default 256).
	MinECBits int
	// Cache, when set, remembers signatures that verified (shared by copies
	// of the policy); the policy's constraints are still checked each time.
	Cache *SignatureCache
}

// DefaultAlgorithms is the TS 119 312 baseline: SHA-2 family, RSA ≥ 2048,
// EC ≥ 256 bits, Ed25519; no MD5, no SHA-1, no DSA.
func DefaultAlgorithms() AlgorithmPolicy {
	return AlgorithmPolicy{MinRSABits: 2048, MinECBits: 256, SHA1CertsBefore: time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// ErrCrypto marks an algorithm that is known but not acceptable.
var ErrCrypto = errors.New("algorithm not acceptable")

// CheckHash reports whether h is acceptable for signatures.
func (p *AlgorithmPolicy) CheckHash(h crypto.Hash) error {
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_384, crypto.SHA3_512:
		return nil
	case crypto.SHA1:
		if p.AllowSHA1 {
			return nil
		}
		return fmt.Errorf("%w: SHA-1", ErrCrypto)
	case crypto.MD5:
		if p.AllowMD5 {
			return nil
		}
		return fmt.Errorf("%w: MD5", ErrCrypto)
	case crypto.SHA224:
		return fmt.Errorf("%w: SHA-224", ErrCrypto)
	}
	return fmt.Errorf("%w: hash %v", ErrCrypto, h)
}

// CheckKey reports whether a public key is strong enough.
func (p *AlgorithmPolicy) CheckKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < p.MinRSABits {
			return fmt.Errorf("%w: RSA-%d key", ErrCrypto, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < p.MinECBits {
			return fmt.Errorf("%w: %d-bit EC key", ErrCrypto, k.Curve.Params().BitSize)
		}
	case ed25519.PublicKey:
	case *dsa.PublicKey:
		if !p.AllowDSA {
			return fmt.Errorf("%w: DSA key", ErrCrypto)
		}
	default:
		return fmt.Errorf("%w: key type %T", ErrCrypto, pub)
	}
	return nil
}

func hashOf(alg x509.SignatureAlgorithm) crypto.Hash {
	switch alg {
	case x509.MD5WithRSA:
		return crypto.MD5
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		return crypto.SHA1
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256, x509.SHA256WithRSAPSS, x509.DSAWithSHA256:
		return crypto.SHA256
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		return crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		return crypto.SHA512
	}
	return 0
}

// checkCertSignature verifies child's signature with parent's key under the
// algorithm policy.
func (p *AlgorithmPolicy) checkCertSignature(child, parent *x509.Certificate, at time.Time) *Error {
	pub := parent.PublicKey
	if pub == nil {
		return fail(CryptoConstraints, -1, "issuer public key algorithm not supported")
	}
	pol := p
	if hashOf(child.SignatureAlgorithm) == crypto.SHA1 && at.Before(p.SHA1CertsBefore) {
		q := *p
		q.AllowSHA1 = true
		pol = &q
	}
	if err := pol.VerifySignature(child.SignatureAlgorithm, pub, child.RawTBSCertificate, child.Signature); err != nil {
		if errors.Is(err, ErrCrypto) {
			return fail(CryptoConstraints, -1, "%v", err)
		}
		return fail(SigCryptoFailure, -1, "certificate signature: %v", err)
	}
	return nil
}

// VerifySignature verifies sig over signed with pub for an x509 signature
// algorithm, enforcing the policy. Errors wrapping ErrCrypto mean the
// algorithm or key is not acceptable; others mean the signature is wrong.
func (p *AlgorithmPolicy) VerifySignature(alg x509.SignatureAlgorithm, pub any, signed, sig []byte) error {
	if alg == x509.PureEd25519 {
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return errors.New("key does not match Ed25519 algorithm")
		}
		if !ed25519.Verify(k, signed, sig) {
			return errors.New("Ed25519 verification failed")
		}
		return nil
	}
	h := hashOf(alg)
	if h == 0 {
		return fmt.Errorf("%w: signature algorithm %v", ErrCrypto, alg)
	}
	if err := p.CheckHash(h); err != nil {
		return err
	}
	if err := p.CheckKey(pub); err != nil {
		return err
	}
	hh := h.New()
	hh.Write(signed)
	digest := hh.Sum(nil)
	if p.Cache == nil {
		return VerifyDigest(alg, pub, h, digest, sig)
	}
	k, cacheable := signatureKey(alg, pub, digest, sig)
	if cacheable && p.Cache.seen(k) {
		return nil
	}
	if err := VerifyDigest(alg, pub, h, digest, sig); err != nil {
		return err
	}
	if cacheable {
		p.Cache.add(k)
	}
	return nil
}

// VerifyDigest checks a signature over a precomputed digest.
func VerifyDigest(alg x509.SignatureAlgorithm, pub any, h crypto.Hash, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		case x509.MD5WithRSA, x509.SHA1WithRSA, x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA:
			return rsa.VerifyPKCS1v15(k, h, digest, sig)
		}
	case *ecdsa.PublicKey:
		switch alg {
		case x509.ECDSAWithSHA1, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
			if !ecdsa.VerifyASN1(k, digest, sig) {
				return errors.New("ECDSA verification failed")
			}
			return nil
		}
	case *dsa.PublicKey:
		if k.P == nil || k.Q == nil || k.G == nil || k.Y == nil || k.Q.Sign() <= 0 || k.P.Sign() <= 0 {
			return errors.New("DSA key without usable parameters")
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
			return errors.New("malformed DSA signature")
		}
		if rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
			return errors.New("malformed DSA signature")
		}
		if !dsa.Verify(k, digest, rs.R, rs.S) {
			return errors.New("DSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("public key %T does not match algorithm %v", pub, alg)
}
