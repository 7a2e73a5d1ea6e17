// Package cades builds the detached CMS SignedData of a PAdES baseline
// signature (CAdES as profiled by ETSI EN 319 142-1): signed attributes
// content-type, message-digest and ESS signing-certificate-v2, no
// signing-time, and an optional signature-time-stamp unsigned attribute.
// It takes a crypto.Signer and returns DER.
package cades

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers used in the CMS.
var (
	OIDData                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDSignedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	OIDContentType          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDMessageDigest        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDSigningTime          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	OIDSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	OIDTimeStampToken       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidRSA256     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSA384     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSA512     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	asn1NullParam = asn1.RawValue{Tag: asn1.TagNull, Class: asn1.ClassUniversal, Bytes: []byte{}}
)

// ErrUnsupported reports a key or hash this package cannot sign with.
var ErrUnsupported = errors.New("cades: unsupported algorithm")

// Options selects the algorithms of a signature.
type Options struct {
	// Hash is the digest algorithm (SHA-256, SHA-384 or SHA-512). Zero
	// picks SHA-384 for P-384 keys, SHA-512 for P-521 keys, SHA-256 otherwise.
	Hash crypto.Hash
	// PSS selects RSASSA-PSS for RSA keys (salt length = hash length).
	PSS bool
	// BeforeSign, when set, is called with the digest the key is about to
	// sign (the hash of the DER signed attributes); an error aborts before
	// the key is used. Remote signing binds its authorisation here.
	BeforeSign func(dtbs []byte) error
}

// DefaultHash returns the digest algorithm matching the key's strength.
func DefaultHash(pub crypto.PublicKey) crypto.Hash {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve != nil {
		switch k.Curve.Params().BitSize {
		case 384:
			return crypto.SHA384
		case 521:
			return crypto.SHA512
		}
	}
	return crypto.SHA256
}

// DigestAlgorithm returns the AlgorithmIdentifier of h (parameters absent).
func DigestAlgorithm(h crypto.Hash) (pkix.AlgorithmIdentifier, error) {
	switch h {
	case crypto.SHA256:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, nil
	case crypto.SHA384:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA384}, nil
	case crypto.SHA512:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA512}, nil
	}
	return pkix.AlgorithmIdentifier{}, fmt.Errorf("%w: hash %v", ErrUnsupported, h)
}

type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength   int                      `asn1:"explicit,tag:2"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// signatureAlgorithm returns the AlgorithmIdentifier and crypto.SignerOpts
// for signing with pub.
func signatureAlgorithm(pub crypto.PublicKey, h crypto.Hash, pss bool) (pkix.AlgorithmIdentifier, crypto.SignerOpts, error) {
	idx := map[crypto.Hash]int{crypto.SHA256: 0, crypto.SHA384: 1, crypto.SHA512: 2}[h]
	if _, err := DigestAlgorithm(h); err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	switch pub.(type) {
	case *ecdsa.PublicKey:
		oid := []asn1.ObjectIdentifier{oidECDSA256, oidECDSA384, oidECDSA512}[idx]
		return pkix.AlgorithmIdentifier{Algorithm: oid}, h, nil
	case *rsa.PublicKey:
		if !pss {
			oid := []asn1.ObjectIdentifier{oidRSA256, oidRSA384, oidRSA512}[idx]
			return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1NullParam}, h, nil
		}
		dig, _ := DigestAlgorithm(h)
		dig.Parameters = asn1NullParam
		mgfHash, err := asn1.Marshal(dig)
		if err != nil {
			return pkix.AlgorithmIdentifier{}, nil, err
		}
		params, err := asn1.Marshal(pssParams{
			Hash:         dig,
			MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfHash}},
			SaltLength:   h.Size(),
			TrailerField: 1,
		})
		if err != nil {
			return pkix.AlgorithmIdentifier{}, nil, err
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: params}},
			&rsa.PSSOptions{SaltLength: h.Size(), Hash: h}, nil
	}
	return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("%w: key type %T", ErrUnsupported, pub)
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue // SET OF
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type essCertIDv2 struct {
	CertHash     []byte
	IssuerSerial issuerSerial
}

type issuerSerial struct {
	Issuer asn1.RawValue // GeneralNames
	Serial *big.Int
}

type signingCertificateV2 struct {
	Certs []essCertIDv2
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue   `asn1:"optional"`
	SignerInfos      []asn1.RawValue `asn1:"set"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

// Signature is a CAdES signature under construction: signed, and waiting
// for optional unsigned attributes before it is encoded.
type Signature struct {
	// Value is the signature value (the SignerInfo's signature field).
	Value    []byte
	Hash     crypto.Hash
	info     signerInfo
	chain    []*x509.Certificate
	unsigned [][]byte
}

// Sign computes a CAdES-baseline signature over a detached content whose
// digest (with opts.Hash) is digest. chain[0] is the signer's certificate;
// the rest of the chain (without or with the root) follows.
func Sign(rand io.Reader, digest []byte, key crypto.Signer, chain []*x509.Certificate, opts Options) (*Signature, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, errors.New("cades: no signer certificate")
	}
	leaf := chain[0]
	h := opts.Hash
	if h == 0 {
		h = DefaultHash(key.Public())
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("cades: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
	}
	digAlg, err := DigestAlgorithm(h)
	if err != nil {
		return nil, err
	}
	sigAlg, sigOpts, err := signatureAlgorithm(key.Public(), h, opts.PSS)
	if err != nil {
		return nil, err
	}
	signedAttrs, err := buildSignedAttrs(digest, leaf)
	if err != nil {
		return nil, err
	}
	hh := h.New()
	hh.Write(signedAttrs)
	dtbs := hh.Sum(nil)
	if opts.BeforeSign != nil {
		if err := opts.BeforeSign(dtbs); err != nil {
			return nil, err
		}
	}
	sig, err := key.Sign(rand, dtbs, sigOpts)
	if err != nil {
		return nil, fmt.Errorf("cades: signing: %w", err)
	}
	attrs := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signedAttrs[headerLen(signedAttrs):]}
	return &Signature{
		Value: sig,
		Hash:  h,
		chain: chain,
		info: signerInfo{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: leaf.RawIssuer}, Serial: leaf.SerialNumber},
			DigestAlgorithm:    digAlg,
			SignedAttrs:        attrs,
			SignatureAlgorithm: sigAlg,
			Signature:          sig,
		},
	}, nil
}

// buildSignedAttrs returns the DER SET OF signed attributes (tag 0x31), the
// bytes the signature covers.
func buildSignedAttrs(digest []byte, leaf *x509.Certificate) ([]byte, error) {
	ct, err := attr(OIDContentType, OIDData)
	if err != nil {
		return nil, err
	}
	md, err := attr(OIDMessageDigest, digest)
	if err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(leaf.Raw)
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: leaf.RawIssuer})
	if err != nil {
		return nil, err
	}
	gns, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: gn})
	if err != nil {
		return nil, err
	}
	sc, err := attr(OIDSigningCertificateV2, signingCertificateV2{Certs: []essCertIDv2{{
		CertHash:     certHash[:],
		IssuerSerial: issuerSerial{Issuer: asn1.RawValue{FullBytes: gns}, Serial: leaf.SerialNumber},
	}}})
	if err != nil {
		return nil, err
	}
	return setOf([][]byte{ct, md, sc})
}

// attr encodes Attribute ::= SEQUENCE { attrType, attrValues SET OF }.
func attr(oid asn1.ObjectIdentifier, value any) ([]byte, error) {
	v, err := asn1.Marshal(value)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(attribute{Type: oid, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}})
}

// setOf encodes a DER SET OF the given encodings, sorted as DER requires.
func setOf(elems [][]byte) ([]byte, error) {
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, bytes.Compare)
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(sorted, nil)})
}

func headerLen(der []byte) int {
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		return 0
	}
	return len(v.FullBytes) - len(v.Bytes)
}

// TimestampImprint returns the digest of the signature value that a
// signature-time-stamp must cover.
func (s *Signature) TimestampImprint(h crypto.Hash) []byte {
	hh := h.New()
	hh.Write(s.Value)
	return hh.Sum(nil)
}

// AddTimestamp adds token (a DER TimeStampToken) as the
// signature-time-stamp unsigned attribute.
func (s *Signature) AddTimestamp(token []byte) error {
	in := cryptobyte.String(token)
	var ci, content cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&ct) || !ct.Equal(OIDSignedData) ||
		!ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() {
		return errors.New("cades: timestamp token is not a CMS SignedData")
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(token)+32))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(OIDTimeStampToken)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(token) })
	})
	a, err := b.Bytes()
	if err != nil {
		return err
	}
	s.unsigned = append(s.unsigned, a)
	return nil
}

// Marshal returns the DER ContentInfo holding the SignedData, written in
// one buffer sized beforehand (the certificates and the time-stamp tokens
// are copied once).
func (s *Signature) Marshal() ([]byte, error) {
	info := &s.info
	digAlg, err := asn1.Marshal(info.DigestAlgorithm)
	if err != nil {
		return nil, err
	}
	sigAlg, err := asn1.Marshal(info.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	size := 256 + 2*len(digAlg) + len(sigAlg) + len(info.SID.Issuer.FullBytes) + len(info.SignedAttrs.Bytes) + len(info.Signature)
	for _, c := range s.chain {
		size += len(c.Raw)
	}
	for _, u := range s.unsigned {
		size += len(u)
	}
	unsigned := slices.Clone(s.unsigned)
	slices.SortFunc(unsigned, bytes.Compare) // DER orders a SET OF by encoding
	ctx := func(tag cbasn1.Tag) cbasn1.Tag { return tag.Constructed().ContextSpecific() }
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(OIDSignedData)
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(digAlg) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDData) })
				b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
					for _, c := range s.chain {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(int64(info.Version))
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(info.SID.Issuer.FullBytes)
							b.AddASN1BigInt(info.SID.Serial)
						})
						b.AddBytes(digAlg)
						b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddBytes(info.SignedAttrs.Bytes) })
						b.AddBytes(sigAlg)
						b.AddASN1OctetString(info.Signature)
						if len(unsigned) > 0 {
							b.AddASN1(ctx(1), func(b *cryptobyte.Builder) {
								for _, u := range unsigned {
									b.AddBytes(u)
								}
							})
						}
					})
				})
			})
		})
	})
	return b.Bytes()
}
