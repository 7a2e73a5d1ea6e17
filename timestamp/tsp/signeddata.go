package tsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignerOptions chooses how a TokenSigner signs.
type SignerOptions struct {
	// Hash is the digest for the signed attributes and the signature; zero
	// picks SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521.
	Hash crypto.Hash
	// PSS signs with RSASSA-PSS instead of PKCS #1 v1.5 (RSA keys only).
	PSS bool
	// SigningTime adds the signing-time signed attribute.
	SigningTime bool
}

// TokenSigner wraps TSTInfo in CMS SignedData (RFC 5652) signed by the TSA
// unit: content-type, message-digest and signing-certificate-v2 (RFC 5816,
// ESSCertIDv2 with SHA-256 of the unit certificate and its issuerSerial)
// signed attributes. Everything that does not depend on the token is
// encoded once, in NewTokenSigner.
type TokenSigner struct {
	signer      crypto.Signer
	hash        crypto.Hash
	signerOpts  crypto.SignerOpts
	digestAlg   []byte // DER AlgorithmIdentifier of hash
	sigAlg      []byte // DER AlgorithmIdentifier of the signature
	sid         []byte // DER IssuerAndSerialNumber
	certAttr    []byte // DER Attribute signingCertificateV2
	unitCert    []byte // DER unit certificate
	chainCerts  []byte // DER unit certificate and chain, sorted as a DER SET OF
	signingTime bool

	// Pre-encoded parts of the per-token fast path (SignAppend).
	digestAlgs   []byte     // SET OF DigestAlgorithmIdentifier
	unitCertsEl  []byte     // [0] certificates: the unit certificate
	chainCertsEl []byte     // [0] certificates: unit certificate and chain
	attrs        *attrsTmpl // nil: always take the general path
}

// attrsTmpl is the DER SET of signed attributes with a zero message digest
// (and signing time), and where those are: per token only they change.
// Their lengths are fixed, so the DER SET OF order is too.
type attrsTmpl struct {
	der      []byte
	mdOff    int // offset of the message digest value
	timeOff  int // offset of the UTCTime contents, 0 without signing-time
	hashSize int
}

// NewTokenSigner prepares a TokenSigner for the unit certificate cert whose
// private key is signer; chain holds the certificates above it that tokens
// may include (it may be empty).
func NewTokenSigner(signer crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, opts SignerOptions) (*TokenSigner, error) {
	s := &TokenSigner{signer: signer, hash: opts.Hash, signingTime: opts.SigningTime, unitCert: cert.Raw}
	var sigOID asn1.ObjectIdentifier
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if opts.PSS {
			return nil, errors.New("tsp: PSS needs an RSA key")
		}
		if s.hash == 0 {
			switch pub.Curve {
			case elliptic.P384():
				s.hash = crypto.SHA384
			case elliptic.P521():
				s.hash = crypto.SHA512
			default:
				s.hash = crypto.SHA256
			}
		}
		sigOID = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: OIDECDSAWithSHA256, crypto.SHA384: OIDECDSAWithSHA384, crypto.SHA512: OIDECDSAWithSHA512}[s.hash]
		s.signerOpts = s.hash
	case *rsa.PublicKey:
		if s.hash == 0 {
			s.hash = crypto.SHA256
		}
		if opts.PSS {
			s.signerOpts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.hash}
			sigOID = OIDRSASSAPSS
		} else {
			s.signerOpts = s.hash
			sigOID = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: OIDSHA256WithRSA, crypto.SHA384: OIDSHA384WithRSA, crypto.SHA512: OIDSHA512WithRSA}[s.hash]
		}
	default:
		return nil, fmt.Errorf("tsp: unsupported signing key type %T", pub)
	}
	hashOID, ok := OIDFromHash(s.hash)
	if sigOID == nil || !ok {
		return nil, fmt.Errorf("tsp: unsupported signature hash %v", s.hash)
	}
	var err error
	if s.digestAlg, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(hashOID) })
	}); err != nil {
		return nil, err
	}
	if s.sigAlg, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(sigOID)
			switch {
			case opts.PSS:
				addPSSParams(b, hashOID, s.hash.Size())
			case sigOID.Equal(OIDSHA256WithRSA) || sigOID.Equal(OIDSHA384WithRSA) || sigOID.Equal(OIDSHA512WithRSA):
				b.AddASN1NULL()
			}
		})
	}); err != nil {
		return nil, err
	}
	if s.sid, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(cert.RawIssuer)
			b.AddASN1BigInt(cert.SerialNumber)
		})
	}); err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(cert.Raw)
	if s.certAttr, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDSigningCertificateV2)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2
							// hashAlgorithm is omitted: SHA-256 is its DEFAULT.
							b.AddASN1OctetString(certHash[:])
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
									b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
										b.AddBytes(cert.RawIssuer)
									})
								})
								b.AddASN1BigInt(cert.SerialNumber)
							})
						})
					})
				})
			})
		})
	}); err != nil {
		return nil, err
	}
	all := [][]byte{cert.Raw}
	for _, c := range chain {
		all = append(all, c.Raw)
	}
	slices.SortFunc(all, bytes.Compare)
	s.chainCerts = bytes.Join(all, nil)
	s.digestAlgs = appendTLV(nil, tagSet, s.digestAlg)
	s.unitCertsEl = appendTLV(nil, tagContext0, s.unitCert)
	s.chainCertsEl = appendTLV(nil, tagContext0, s.chainCerts)
	s.attrs = s.newAttrsTmpl()
	return s, nil
}

// tmplTime is the signing time the template is built with; any time from
// 1950 to 2049 encodes to a UTCTime of the same length.
var tmplTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// newAttrsTmpl builds the signed-attributes template, or returns nil when
// patching it would not give what signedAttributes encodes (checked with
// two different digests and times).
func (s *TokenSigner) newAttrsTmpl() *attrsTmpl {
	zero := make([]byte, s.hash.Size())
	der, err := s.signedAttributes(zero, tmplTime)
	if err != nil {
		return nil
	}
	t := &attrsTmpl{der: der, hashSize: len(zero)}
	md, err := attribute(OIDMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(zero) })
	if err != nil {
		return nil
	}
	i := bytes.Index(der, md)
	if i < 0 {
		return nil
	}
	t.mdOff = i + len(md) - len(zero)
	if s.signingTime {
		st, err := attribute(OIDSigningTime, func(b *cryptobyte.Builder) { addTime(b, tmplTime) })
		if err != nil {
			return nil
		}
		i := bytes.Index(der, st)
		if i < 0 {
			return nil
		}
		t.timeOff = i + len(st) - 13
	}
	ones := bytes.Repeat([]byte{0xff}, len(zero))
	other := time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	want, err := s.signedAttributes(ones, other)
	if err != nil || !bytes.Equal(t.patch(ones, other), want) {
		return nil
	}
	return t
}

// patch returns a copy of the template with digest and signing time in place.
func (t *attrsTmpl) patch(digest []byte, signingTime time.Time) []byte {
	out := bytes.Clone(t.der)
	copy(out[t.mdOff:t.mdOff+t.hashSize], digest)
	if t.timeOff > 0 {
		signingTime.UTC().AppendFormat(out[t.timeOff:t.timeOff], "060102150405Z0700")
	}
	return out
}

// signedAttributes encodes the DER SET of signed attributes.
func (s *TokenSigner) signedAttributes(contentDigest []byte, signingTime time.Time) ([]byte, error) {
	ct, err := attribute(OIDContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDTSTInfo) })
	if err != nil {
		return nil, err
	}
	md, err := attribute(OIDMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(contentDigest) })
	if err != nil {
		return nil, err
	}
	attrs := [][]byte{ct, md, s.certAttr}
	if s.signingTime {
		st, err := attribute(OIDSigningTime, func(b *cryptobyte.Builder) { addTime(b, signingTime) })
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, st)
	}
	slices.SortFunc(attrs, bytes.Compare) // DER SET OF order
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
}

// Hash is the digest algorithm of the signature.
func (s *TokenSigner) Hash() crypto.Hash { return s.hash }

func addPSSParams(b *cryptobyte.Builder, hashOID asn1.ObjectIdentifier, saltLen int) {
	hashAlg := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(hashOID)
			b.AddASN1NULL()
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), hashAlg)
		b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDMGF1)
				hashAlg(b)
			})
		})
		b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(int64(saltLen))
		})
	})
}

func build(f func(*cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
	})
}

// Sign returns the DER ContentInfo of a time-stamp token carrying tstInfo.
// includeCerts adds the unit certificate (withChain: and the chain);
// signingTime is used only when the signer was built with SigningTime.
func (s *TokenSigner) Sign(rand io.Reader, tstInfo []byte, includeCerts, withChain bool, signingTime time.Time) ([]byte, error) {
	return s.SignAppend(nil, rand, tstInfo, includeCerts, withChain, signingTime)
}

// SignAppend is Sign appending the token to dst, which it returns: a caller
// that recycles buffers encodes a token without allocating one.
func (s *TokenSigner) SignAppend(dst []byte, rand io.Reader, tstInfo []byte, includeCerts, withChain bool, signingTime time.Time) ([]byte, error) {
	var digest [64]byte
	contentDigest := s.digest(digest[:0], tstInfo)
	var signed []byte
	if y := signingTime.UTC().Year(); s.attrs != nil && (!s.signingTime || y >= 1950 && y < 2050) {
		signed = s.attrs.patch(contentDigest, signingTime)
	} else {
		var err error
		if signed, err = s.signedAttributes(contentDigest, signingTime); err != nil {
			return nil, err
		}
	}
	var sigDigest [64]byte
	sig, err := s.signer.Sign(rand, s.digest(sigDigest[:0], signed), s.signerOpts)
	if err != nil {
		return nil, fmt.Errorf("signing the time-stamp token: %w", err)
	}
	// The signed attributes are signed as a SET and carried as [0]
	// IMPLICIT: the same bytes under another tag.
	signed[0] = tagContext0
	var certs []byte
	if includeCerts {
		certs = s.unitCertsEl
		if withChain {
			certs = s.chainCertsEl
		}
	}
	return s.contentInfo(dst, tstInfo, certs, signed, sig), nil
}

// digest appends the hash of data to dst.
func (s *TokenSigner) digest(dst, data []byte) []byte {
	if s.hash == crypto.SHA256 {
		sum := sha256.Sum256(data)
		return append(dst, sum[:]...)
	}
	h := s.hash.New()
	h.Write(data)
	return h.Sum(dst)
}

// oidSignedDataDER and oidTSTInfoDER are the encoded content types.
var (
	oidSignedDataDER = []byte{tagOID, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
	oidTSTInfoDER    = []byte{tagOID, 11, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04}
)

// contentInfo appends the ContentInfo of the token to dst: every length is
// computed first, then the bytes are written once (dst grown at most once,
// to the exact size). attrs is the [0] IMPLICIT signed attributes element,
// certs the [0] certificates element or nil.
func (s *TokenSigner) contentInfo(dst, tstInfo, certs, attrs, sig []byte) []byte {
	eContent := tlvSize(len(tstInfo))
	encap := len(oidTSTInfoDER) + tlvSize(eContent)
	signerInfo := 3 + len(s.sid) + len(s.digestAlg) + len(attrs) + len(s.sigAlg) + tlvSize(len(sig))
	signerInfos := tlvSize(signerInfo)
	sd := 3 + len(s.digestAlgs) + tlvSize(encap) + len(certs) + tlvSize(signerInfos)
	ci := len(oidSignedDataDER) + tlvSize(tlvSize(sd))
	b := slices.Grow(dst, tlvSize(ci))

	b = appendHeader(b, tagSequence, ci)
	b = append(b, oidSignedDataDER...)
	b = appendHeader(b, tagContext0, tlvSize(sd))
	b = appendHeader(b, tagSequence, sd)
	b = append(b, tagInteger, 1, 3)
	b = append(b, s.digestAlgs...)
	b = appendHeader(b, tagSequence, encap)
	b = append(b, oidTSTInfoDER...)
	b = appendHeader(b, tagContext0, eContent)
	b = appendTLV(b, tagOctetString, tstInfo)
	b = append(b, certs...)
	b = appendHeader(b, tagSet, signerInfos)
	b = appendHeader(b, tagSequence, signerInfo)
	b = append(b, tagInteger, 1, 1)
	b = append(b, s.sid...)
	b = append(b, s.digestAlg...)
	b = append(b, attrs...)
	b = append(b, s.sigAlg...)
	return appendTLV(b, tagOctetString, sig)
}

// addTime encodes a CMS Time: UTCTime from 1950 to 2049, else GeneralizedTime.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

// Token is the part of a parsed time-stamp token a client checks.
type Token struct {
	// Info is the decoded TSTInfo.
	Info *TSTInfo
	// Certificates are the DER certificates the token carries.
	Certificates [][]byte
}

// ParseToken extracts the TSTInfo and certificates from a DER ContentInfo
// holding a time-stamp token. It does not verify the signature.
func ParseToken(der []byte) (*Token, error) {
	in := cryptobyte.String(der)
	var ci, content, sd cryptobyte.String
	var ctype, etype asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&ctype) || !ctype.Equal(OIDSignedData) ||
		!ci.ReadASN1(&content, cbasn1.Tag(0).ContextSpecific().Constructed()) || !ci.Empty() ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty() {
		return nil, malformed("token is not a CMS SignedData ContentInfo")
	}
	var version int64
	var digestAlgs, eci, econtent, octets cryptobyte.String
	if !sd.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) ||
		!sd.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!sd.ReadASN1(&eci, cbasn1.SEQUENCE) ||
		!eci.ReadASN1ObjectIdentifier(&etype) || !etype.Equal(OIDTSTInfo) ||
		!eci.ReadASN1(&econtent, cbasn1.Tag(0).ContextSpecific().Constructed()) || !eci.Empty() ||
		!econtent.ReadASN1(&octets, cbasn1.OCTET_STRING) || !econtent.Empty() {
		return nil, malformed("token SignedData does not encapsulate a TSTInfo")
	}
	tok := &Token{}
	if sd.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var certs cryptobyte.String
		if !sd.ReadASN1(&certs, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, malformed("token certificates")
		}
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, malformed("token certificate")
			}
			tok.Certificates = append(tok.Certificates, c)
		}
	}
	info, err := ParseTSTInfo(octets)
	if err != nil {
		return nil, err
	}
	tok.Info = info
	return tok, nil
}

// Summary names the token as `thiqa timestamp` reports it: its serial
// number, genTime (UTC, RFC 3339 with nanoseconds) and policy.
func (t *Token) Summary() string {
	return fmt.Sprintf("serial %s, genTime %s, policy %s", t.Info.SerialNumber, t.Info.GenTime.UTC().Format(time.RFC3339Nano), t.Info.Policy)
}
