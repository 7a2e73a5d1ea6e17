package ocsp

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxRequestSize bounds an OCSP request (DER bytes); larger is malformed.
const MaxRequestSize = 4096

// MaxCertIDs bounds the single requests one OCSP request may carry.
const MaxCertIDs = 8

// ErrMalformed is wrapped by every request parsing error: the responder
// answers malformedRequest. An unknown CertID hash algorithm is malformed
// too (the responder cannot match the issuer; Boulder and Go's ocsp package
// treat it the same way; openssl's own responder answers internalError,
// which would wrongly suggest a fault on our side).
var ErrMalformed = errors.New("malformed OCSP request")

// MaxNonceSize is the largest nonce accepted (RFC 8954 §2.1: 1 to 32 octets).
const MaxNonceSize = 32

var (
	oidNonce      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidSHA1       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidBasicOCSP  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	hashAlgorithm = map[string]crypto.Hash{
		oidSHA1.String(): crypto.SHA1, oidSHA256.String(): crypto.SHA256,
		oidSHA384.String(): crypto.SHA384, oidSHA512.String(): crypto.SHA512,
	}
)

func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA1:
		return oidSHA1
	case crypto.SHA256:
		return oidSHA256
	case crypto.SHA384:
		return oidSHA384
	case crypto.SHA512:
		return oidSHA512
	}
	return nil
}

// CertID identifies one certificate in a request (RFC 6960 §4.1.1).
type CertID struct {
	Hash           crypto.Hash
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	Serial         *big.Int
	// Raw is the CertID's DER as received, echoed in the answer.
	Raw []byte
}

// Request is a parsed OCSP request.
type Request struct {
	CertIDs []CertID
	// Nonce is the nonce extension's extnValue as received (the DER of an
	// OCTET STRING of 1 to 32 octets), nil when absent; echoed verbatim.
	Nonce []byte
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseRequest parses a DER OCSP request strictly: minimal lengths and
// integers, no trailing data, at most MaxRequestSize bytes and MaxCertIDs
// single requests, known CertID hash algorithms (SHA-1, SHA-256, SHA-384,
// SHA-512) with matching hash lengths, a well-formed nonce and no unknown
// critical extension. Every error wraps ErrMalformed. A requestor
// signature, if any, is accepted and ignored (requests need no signature).
func ParseRequest(der []byte) (*Request, error) {
	if len(der) > MaxRequestSize {
		return nil, malformed("%d bytes exceed %d", len(der), MaxRequestSize)
	}
	in := cryptobyte.String(der)
	var req, tbs cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("not a single DER SEQUENCE")
	}
	if !req.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, malformed("no tbsRequest")
	}
	if !req.Empty() {
		var sig cryptobyte.String
		if !req.ReadASN1(&sig, cbasn1.Tag(0).Constructed().ContextSpecific()) || !req.Empty() {
			return nil, malformed("trailing data after tbsRequest")
		}
	}
	var present bool
	var version cryptobyte.String
	if !tbs.ReadOptionalASN1(&version, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, malformed("bad version")
	}
	if present {
		var v int64
		if !version.ReadASN1Integer(&v) || !version.Empty() || v != 0 {
			return nil, malformed("unsupported version")
		}
	}
	var requestor cryptobyte.String
	if !tbs.ReadOptionalASN1(&requestor, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, malformed("bad requestorName")
	}
	var list cryptobyte.String
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, malformed("no requestList")
	}
	out := &Request{}
	for !list.Empty() {
		if len(out.CertIDs) == MaxCertIDs {
			return nil, malformed("more than %d certificates in one request", MaxCertIDs)
		}
		var single cryptobyte.String
		if !list.ReadASN1(&single, cbasn1.SEQUENCE) {
			return nil, malformed("bad Request")
		}
		id, err := parseCertID(&single)
		if err != nil {
			return nil, err
		}
		if !single.Empty() {
			var exts cryptobyte.String
			if !single.ReadASN1(&exts, cbasn1.Tag(0).Constructed().ContextSpecific()) || !single.Empty() {
				return nil, malformed("trailing data in Request")
			}
			if _, err := parseExtensions(exts); err != nil {
				return nil, err
			}
		}
		out.CertIDs = append(out.CertIDs, id)
	}
	if len(out.CertIDs) == 0 {
		return nil, malformed("empty requestList")
	}
	if !tbs.Empty() {
		var exts cryptobyte.String
		if !tbs.ReadASN1(&exts, cbasn1.Tag(2).Constructed().ContextSpecific()) || !tbs.Empty() {
			return nil, malformed("trailing data in tbsRequest")
		}
		nonce, err := parseExtensions(exts)
		if err != nil {
			return nil, err
		}
		out.Nonce = nonce
	}
	return out, nil
}

func parseCertID(s *cryptobyte.String) (CertID, error) {
	var raw, id, alg cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return CertID{}, malformed("bad CertID")
	}
	id = raw
	var oid asn1.ObjectIdentifier
	if !id.ReadASN1(&id, cbasn1.SEQUENCE) || !id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return CertID{}, malformed("bad CertID hashAlgorithm")
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return CertID{}, malformed("bad hashAlgorithm parameters")
		}
	}
	h, ok := hashAlgorithm[oid.String()]
	if !ok {
		return CertID{}, malformed("unknown CertID hash algorithm %s", oid)
	}
	out := CertID{Hash: h, Serial: new(big.Int), Raw: []byte(raw)}
	if !id.ReadASN1Bytes(&out.IssuerNameHash, cbasn1.OCTET_STRING) || !id.ReadASN1Bytes(&out.IssuerKeyHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Integer(out.Serial) || !id.Empty() {
		return CertID{}, malformed("bad CertID fields")
	}
	if len(out.IssuerNameHash) != h.Size() || len(out.IssuerKeyHash) != h.Size() {
		return CertID{}, malformed("CertID hash lengths do not match %s", h)
	}
	return out, nil
}

// parseExtensions checks an Extensions list and returns the nonce
// extension's extnValue when present.
func parseExtensions(s cryptobyte.String) ([]byte, error) {
	var list cryptobyte.String
	if !s.ReadASN1(&list, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("bad Extensions")
	}
	var nonce []byte
	seen := map[string]bool{}
	for !list.Empty() {
		var ext cryptobyte.String
		var oid asn1.ObjectIdentifier
		var critical bool
		var value []byte
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) ||
			!ext.ReadASN1Bytes(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, malformed("bad Extension")
		}
		if seen[oid.String()] {
			return nil, malformed("duplicate extension %s", oid)
		}
		seen[oid.String()] = true
		switch {
		case oid.Equal(oidNonce):
			inner := cryptobyte.String(value)
			var n []byte
			if !inner.ReadASN1Bytes(&n, cbasn1.OCTET_STRING) || !inner.Empty() {
				return nil, malformed("nonce is not an OCTET STRING (RFC 8954)")
			}
			if len(n) < 1 || len(n) > MaxNonceSize {
				return nil, malformed("nonce of %d octets outside 1..%d (RFC 8954)", len(n), MaxNonceSize)
			}
			nonce = value
		case critical:
			return nil, malformed("unsupported critical extension %s", oid)
		}
	}
	return nonce, nil
}

// NewRequest builds a DER OCSP request for serial issued by issuer, with
// CertID hash h and, when nonce is non-empty, a nonce extension (RFC 8954).
// Load generators and tests use it; `thiqa bench ocsp` builds
// its request set with it.
func NewRequest(issuer *x509.Certificate, serial *big.Int, h crypto.Hash, nonce []byte) ([]byte, error) {
	if hashOID(h) == nil {
		return nil, fmt.Errorf("unsupported CertID hash %s", h)
	}
	keyBits, err := publicKeyBits(issuer)
	if err != nil {
		return nil, err
	}
	nh, kh := h.New(), h.New()
	nh.Write(issuer.RawSubject)
	kh.Write(keyBits)
	certID := buildCertID(h, nh.Sum(nil), kh.Sum(nil), serial)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(certID) })
			})
			if len(nonce) > 0 {
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidNonce)
							b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1OctetString(nonce) })
						})
					})
				})
			}
		})
	})
	return b.Bytes()
}
