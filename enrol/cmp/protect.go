package cmp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

// Bounds on the work a MAC may ask for: fewer iterations are too weak, more
// would let a request burn the server's CPU.
const (
	minIterations = 100
	maxIterations = 100000
)

// hashByOID returns the hash of a one-way function or HMAC OID.
func hashByOID(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	switch {
	case oid.Equal(oidSHA1), oid.Equal(oidHMACSHA1), oid.Equal(oidHMACWithSHA1):
		return sha1.New, true
	case oid.Equal(oidSHA256), oid.Equal(oidHMACWithSHA256):
		return sha256.New, true
	case oid.Equal(oidSHA384), oid.Equal(oidHMACWithSHA384):
		return sha512.New384, true
	case oid.Equal(oidSHA512), oid.Equal(oidHMACWithSHA512):
		return sha512.New, true
	}
	return nil, false
}

// macScheme is a password-based MAC as a request used it: the response
// uses the same scheme with a fresh salt.
type macScheme struct {
	alg pkix.AlgorithmIdentifier
}

// isMAC reports whether alg is a password-based MAC this server knows.
func isMAC(alg pkix.AlgorithmIdentifier) bool {
	return alg.Algorithm.Equal(oidPasswordBasedMac) || alg.Algorithm.Equal(oidPBMAC1)
}

// macParams are a password-based MAC's checked parameters.
type macParams struct {
	pbmac1     bool
	owf, mac   func() hash.Hash // owf: PBM's one-way function; prf: PBKDF2's
	prf        func() hash.Hash
	salt       []byte
	iterations int
	keyLen     int
}

// parseMACParams reads and bounds the parameters of a MAC algorithm.
func parseMACParams(alg pkix.AlgorithmIdentifier) (*macParams, *cmpError) {
	switch {
	case alg.Algorithm.Equal(oidPasswordBasedMac):
		var p pbmParameter
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, failf(BadAlg, "malformed PBMParameter")
		}
		if p.IterationCount < minIterations || p.IterationCount > maxIterations {
			return nil, failf(BadAlg, "PBM iteration count %d outside %d..%d", p.IterationCount, minIterations, maxIterations)
		}
		if len(p.Salt) == 0 || len(p.Salt) > 64 {
			return nil, failf(BadAlg, "PBM salt of %d bytes", len(p.Salt))
		}
		owf, ok := hashByOID(p.OWF.Algorithm)
		if !ok {
			return nil, failf(BadAlg, "PBM one-way function %s not supported", p.OWF.Algorithm)
		}
		mh, ok := hashByOID(p.MAC.Algorithm)
		if !ok || p.MAC.Algorithm.Equal(oidSHA256) || p.MAC.Algorithm.Equal(oidSHA1) {
			return nil, failf(BadAlg, "PBM MAC %s not supported", p.MAC.Algorithm)
		}
		return &macParams{owf: owf, mac: mh, salt: p.Salt, iterations: p.IterationCount}, nil
	case alg.Algorithm.Equal(oidPBMAC1):
		var p pbmac1Params
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, failf(BadAlg, "malformed PBMAC1 parameters")
		}
		if !p.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
			return nil, failf(BadAlg, "PBMAC1 key derivation %s not supported (want PBKDF2)", p.KeyDerivationFunc.Algorithm)
		}
		var kp pbkdf2Params
		if rest, err := asn1.Unmarshal(p.KeyDerivationFunc.Parameters.FullBytes, &kp); err != nil || len(rest) > 0 {
			return nil, failf(BadAlg, "malformed PBKDF2 parameters")
		}
		if kp.IterationCount < minIterations || kp.IterationCount > maxIterations || len(kp.Salt) == 0 || len(kp.Salt) > 64 {
			return nil, failf(BadAlg, "PBKDF2 iteration count or salt out of bounds")
		}
		prf := sha1.New
		if kp.PRF.Algorithm != nil {
			var ok bool
			if prf, ok = hashByOID(kp.PRF.Algorithm); !ok {
				return nil, failf(BadAlg, "PBKDF2 PRF %s not supported", kp.PRF.Algorithm)
			}
		}
		mh, ok := hashByOID(p.MessageAuthScheme.Algorithm)
		if !ok {
			return nil, failf(BadAlg, "PBMAC1 MAC %s not supported", p.MessageAuthScheme.Algorithm)
		}
		keyLen := kp.KeyLength
		if keyLen == 0 {
			keyLen = mh().Size()
		}
		if keyLen < 16 || keyLen > 64 {
			return nil, failf(BadAlg, "PBKDF2 key length %d out of bounds", keyLen)
		}
		return &macParams{pbmac1: true, prf: prf, mac: mh, salt: kp.Salt, iterations: kp.IterationCount, keyLen: keyLen}, nil
	}
	return nil, failf(BadAlg, "protection algorithm %s is not a MAC", alg.Algorithm)
}

// computeMAC returns the MAC of data under secret with the scheme and
// parameters of alg.
func computeMAC(alg pkix.AlgorithmIdentifier, secret []byte, data []byte) ([]byte, *cmpError) {
	p, e := parseMACParams(alg)
	if e != nil {
		return nil, e
	}
	var key []byte
	if p.pbmac1 {
		var err error
		if key, err = pbkdf2.Key(p.prf, string(secret), p.salt, p.iterations, p.keyLen); err != nil {
			return nil, failf(BadAlg, "PBKDF2: %v", err)
		}
	} else {
		// RFC 4210 §5.1.3.1: the one-way function over secret || salt,
		// iterationCount times in all.
		h := p.owf()
		h.Write(secret)
		h.Write(p.salt)
		key = h.Sum(nil)
		for i := 1; i < p.iterations; i++ {
			h.Reset()
			h.Write(key)
			key = h.Sum(key[:0])
		}
	}
	m := hmac.New(p.mac, key)
	m.Write(data)
	return m.Sum(nil), nil
}

// freshMAC returns the algorithm identifier of the response's MAC: the
// request's scheme, functions and iteration count with a new salt.
func freshMAC(req pkix.AlgorithmIdentifier) (pkix.AlgorithmIdentifier, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	var params []byte
	var err error
	switch {
	case req.Algorithm.Equal(oidPasswordBasedMac):
		var p pbmParameter
		if _, err := asn1.Unmarshal(req.Parameters.FullBytes, &p); err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
		p.Salt = salt
		params, err = asn1.Marshal(p)
	case req.Algorithm.Equal(oidPBMAC1):
		var p pbmac1Params
		if _, err := asn1.Unmarshal(req.Parameters.FullBytes, &p); err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
		var kp pbkdf2Params
		if _, err := asn1.Unmarshal(p.KeyDerivationFunc.Parameters.FullBytes, &kp); err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
		kp.Salt = salt
		kpDER, err := asn1.Marshal(kp)
		if err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
		p.KeyDerivationFunc.Parameters = asn1.RawValue{FullBytes: kpDER}
		params, err = asn1.Marshal(p)
		if err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
	default:
		return pkix.AlgorithmIdentifier{}, errors.New("not a MAC")
	}
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: req.Algorithm, Parameters: asn1.RawValue{FullBytes: params}}, nil
}

// Signature algorithms a request may be signed with (protection and POP).
var signatureAlgorithms = []struct {
	oid asn1.ObjectIdentifier
	alg x509.SignatureAlgorithm
}{
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, x509.ECDSAWithSHA256},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, x509.ECDSAWithSHA384},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, x509.ECDSAWithSHA512},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, x509.SHA256WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, x509.SHA384WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, x509.SHA512WithRSA},
	{asn1.ObjectIdentifier{1, 3, 101, 112}, x509.PureEd25519},
}

// signatureAlgorithm maps a signature AlgorithmIdentifier.
func signatureAlgorithm(alg pkix.AlgorithmIdentifier) (x509.SignatureAlgorithm, bool) {
	for _, a := range signatureAlgorithms {
		if alg.Algorithm.Equal(a.oid) {
			return a.alg, true
		}
	}
	return x509.UnknownSignatureAlgorithm, false
}

// checkSignature verifies sig over signed by pub with alg.
func checkSignature(pub crypto.PublicKey, alg pkix.AlgorithmIdentifier, signed, sig []byte) *cmpError {
	sa, ok := signatureAlgorithm(alg)
	if !ok {
		return failf(BadAlg, "signature algorithm %s not supported", alg.Algorithm)
	}
	c := &x509.Certificate{PublicKey: pub}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	default:
		return failf(BadAlg, "public key type %T not supported", pub)
	}
	if err := c.CheckSignature(sa, signed, sig); err != nil {
		return failf(BadMessageCheck, "signature does not verify: %v", err)
	}
	return nil
}

// signer signs responses: the CMP server's key on the token and its
// certificate.
type signer struct {
	key  crypto.Signer
	cert *x509.Certificate
	alg  pkix.AlgorithmIdentifier
}

func newSigner(key crypto.Signer, cert *x509.Certificate) (*signer, error) {
	s := &signer{key: key, cert: cert}
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		s.alg = pkix.AlgorithmIdentifier{Algorithm: signatureAlgorithms[0].oid}
	case *rsa.PublicKey:
		s.alg = pkix.AlgorithmIdentifier{Algorithm: signatureAlgorithms[3].oid, Parameters: asn1.NullRawValue}
	default:
		return nil, fmt.Errorf("cmp: signing key type %T not supported (want ECDSA or RSA)", key.Public())
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("cmp: the signing key does not match its certificate")
	}
	return s, nil
}

func (s *signer) sign(data []byte) ([]byte, error) {
	d := sha256.Sum256(data)
	return s.key.Sign(rand.Reader, d[:], crypto.SHA256)
}
