package tsp

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxNonceBytes bounds the nonce a request may carry (512 bits): RFC 3161
// clients send 64 to 160 bits; anything larger is refused as malformed.
const MaxNonceBytes = 64

// MaxImprintBytes bounds the hashed message (the longest hash known is 64 bytes).
const MaxImprintBytes = 128

// Errors returned by ParseRequest; the responder maps them to failInfo bits.
var (
	// ErrMalformed reports a request that is not a DER TimeStampReq
	// (badDataFormat).
	ErrMalformed = errors.New("tsp: malformed time-stamp request")
	// ErrVersion reports a well-formed request whose version is not v1
	// (badRequest).
	ErrVersion = errors.New("tsp: unsupported time-stamp request version")
)

// Extension is an X.509-style extension as carried in requests and TSTInfo.
type Extension struct {
	ID       asn1.ObjectIdentifier
	Critical bool
	Value    []byte
}

// MessageImprint is the hash of the data to be time-stamped.
type MessageImprint struct {
	// HashAlgorithm is the algorithm identifier's OID.
	HashAlgorithm asn1.ObjectIdentifier
	// HashParams is the DER of the algorithm parameters, nil when absent.
	HashParams []byte
	// HashedMessage is the digest.
	HashedMessage []byte
	// Raw is the DER of the whole MessageImprint, copied into the token.
	Raw []byte
}

// Request is a parsed TimeStampReq (RFC 3161 §2.4.1).
type Request struct {
	Version        int
	MessageImprint MessageImprint
	// ReqPolicy is nil when the request names no policy.
	ReqPolicy asn1.ObjectIdentifier
	// Nonce is nil when the request carries none.
	Nonce      *big.Int
	CertReq    bool
	Extensions []Extension
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// ParseRequest decodes a DER TimeStampReq. It refuses trailing data,
// BER-only encodings, explicitly encoded DEFAULT values, nonces longer than
// MaxNonceBytes, empty or duplicate extensions and unknown fields.
func ParseRequest(der []byte) (*Request, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, malformed("not a DER SEQUENCE")
	}
	if !in.Empty() {
		return nil, malformed("trailing data after the request")
	}
	req := &Request{}
	var version int64
	if !seq.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) {
		return nil, malformed("version")
	}
	mi, err := readMessageImprint(&seq)
	if err != nil {
		return nil, err
	}
	req.MessageImprint = mi
	if seq.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		if !seq.ReadASN1ObjectIdentifier(&req.ReqPolicy) {
			return nil, malformed("reqPolicy")
		}
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) {
		var raw cryptobyte.String
		if !seq.ReadASN1(&raw, cbasn1.INTEGER) || len(raw) == 0 {
			return nil, malformed("nonce")
		}
		if len(raw) > MaxNonceBytes+1 {
			return nil, malformed("nonce longer than 512 bits")
		}
		n, err := parseInteger(raw)
		if err != nil {
			return nil, malformed("nonce: " + err.Error())
		}
		req.Nonce = n
	}
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !seq.ReadASN1Boolean(&req.CertReq) {
			return nil, malformed("certReq")
		}
		if !req.CertReq {
			return nil, malformed("certReq FALSE is the DEFAULT and must be omitted in DER")
		}
	}
	if seq.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var exts cryptobyte.String
		if !seq.ReadASN1(&exts, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, malformed("extensions")
		}
		req.Extensions, err = parseExtensions(exts)
		if err != nil {
			return nil, err
		}
	}
	if !seq.Empty() {
		return nil, malformed("unexpected fields after the extensions")
	}
	if version != 1 {
		return nil, fmt.Errorf("%w: %d", ErrVersion, version)
	}
	req.Version = int(version)
	return req, nil
}

// parseInteger decodes the contents of a DER INTEGER, refusing non-minimal
// encodings.
func parseInteger(b []byte) (*big.Int, error) {
	if len(b) == 0 {
		return nil, errors.New("empty integer")
	}
	if len(b) > 1 && ((b[0] == 0 && b[1]&0x80 == 0) || (b[0] == 0xff && b[1]&0x80 != 0)) {
		return nil, errors.New("integer not minimally encoded")
	}
	n := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		// Two's complement negative value.
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n, nil
}

func readAlgorithm(s *cryptobyte.String) (asn1.ObjectIdentifier, []byte, error) {
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, nil, malformed("algorithm identifier")
	}
	var params []byte
	if !alg.Empty() {
		var p cryptobyte.String
		var tag cbasn1.Tag
		if !alg.ReadAnyASN1Element(&p, &tag) || !alg.Empty() {
			return nil, nil, malformed("algorithm parameters")
		}
		params = p
	}
	return oid, params, nil
}

func readMessageImprint(s *cryptobyte.String) (MessageImprint, error) {
	var mi MessageImprint
	var raw, body cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return mi, malformed("messageImprint")
	}
	mi.Raw = raw
	outer := raw
	if !outer.ReadASN1(&body, cbasn1.SEQUENCE) {
		return mi, malformed("messageImprint")
	}
	oid, params, err := readAlgorithm(&body)
	if err != nil {
		return mi, err
	}
	mi.HashAlgorithm, mi.HashParams = oid, params
	var hashed cryptobyte.String
	if !body.ReadASN1(&hashed, cbasn1.OCTET_STRING) || !body.Empty() {
		return mi, malformed("hashedMessage")
	}
	if len(hashed) > MaxImprintBytes {
		return mi, malformed("hashedMessage too long")
	}
	mi.HashedMessage = hashed
	return mi, nil
}

func parseExtensions(exts cryptobyte.String) ([]Extension, error) {
	if exts.Empty() {
		return nil, malformed("empty extensions")
	}
	var out []Extension
	for !exts.Empty() {
		var e cryptobyte.String
		var ext Extension
		if !exts.ReadASN1(&e, cbasn1.SEQUENCE) || !e.ReadASN1ObjectIdentifier(&ext.ID) {
			return nil, malformed("extension")
		}
		if e.PeekASN1Tag(cbasn1.BOOLEAN) {
			if !e.ReadASN1Boolean(&ext.Critical) || !ext.Critical {
				return nil, malformed("extension critical flag")
			}
		}
		var v cryptobyte.String
		if !e.ReadASN1(&v, cbasn1.OCTET_STRING) || !e.Empty() {
			return nil, malformed("extension value")
		}
		ext.Value = v
		for _, prev := range out {
			if prev.ID.Equal(ext.ID) {
				return nil, malformed("duplicate extension " + ext.ID.String())
			}
		}
		out = append(out, ext)
	}
	return out, nil
}

func addExtensions(b *cryptobyte.Builder, exts []Extension) {
	for _, e := range exts {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(e.ID)
			if e.Critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1OctetString(e.Value)
		})
	}
}

// Marshal encodes the request as DER (version is always v1).
func (r *Request) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(r.MessageImprint.HashAlgorithm)
				if r.MessageImprint.HashParams != nil {
					b.AddBytes(r.MessageImprint.HashParams)
				}
			})
			b.AddASN1OctetString(r.MessageImprint.HashedMessage)
		})
		if r.ReqPolicy != nil {
			b.AddASN1ObjectIdentifier(r.ReqPolicy)
		}
		if r.Nonce != nil {
			b.AddASN1BigInt(r.Nonce)
		}
		if r.CertReq {
			b.AddASN1Boolean(true)
		}
		if len(r.Extensions) > 0 {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				addExtensions(b, r.Extensions)
			})
		}
	})
	return b.Bytes()
}
