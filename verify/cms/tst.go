package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/verify/path"
)

// TSTInfo is the content of an RFC 3161 timestamp token.
type TSTInfo struct {
	Policy        asn1.ObjectIdentifier
	HashAlgorithm crypto.Hash
	HashedMessage []byte
	Serial        *big.Int
	GenTime       time.Time
}

type rawTSTInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	SerialNumber *big.Int
	GenTime      time.Time       `asn1:"generalized"`
	Rest         []asn1.RawValue `asn1:"optional"`
}

// Timestamp is a verified (cryptographically) timestamp token.
type Timestamp struct {
	Info   TSTInfo
	Signed *SignedData
	Signer *SignerInfo
	// Cert is the TSA certificate found in the token (nil if absent).
	Cert *x509.Certificate
}

// ErrImprint means the timestamp's message imprint does not match the data.
var ErrImprint = errors.New("timestamp message imprint does not match")

// ParseTimestamp parses a timestamp token without verifying it.
func ParseTimestamp(der []byte) (*Timestamp, error) { return ParseTimestampWith(der, nil) }

// ParseTimestampWith is ParseTimestamp with the certificates parsed through
// certs (see ParseWith).
func ParseTimestampWith(der []byte, certs *path.CertificateCache) (*Timestamp, error) {
	sd, err := ParseWith(der, certs)
	if err != nil {
		return nil, err
	}
	if !sd.ContentType.Equal(OIDTSTInfo) || !sd.HasContent {
		return nil, fmt.Errorf("%w: timestamp token without TSTInfo content", ErrFormat)
	}
	if len(sd.Signers) != 1 {
		return nil, fmt.Errorf("%w: timestamp token with %d signers", ErrFormat, len(sd.Signers))
	}
	var raw rawTSTInfo
	rest, err := asn1.Unmarshal(sd.Content, &raw)
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: malformed TSTInfo", ErrFormat)
	}
	ts := &Timestamp{Signed: sd, Signer: &sd.Signers[0]}
	ts.Info = TSTInfo{Policy: raw.Policy, HashAlgorithm: Hash(raw.MessageImprint.HashAlgorithm.Algorithm),
		HashedMessage: raw.MessageImprint.HashedMessage, Serial: raw.SerialNumber, GenTime: raw.GenTime}
	ts.Cert = ts.Signer.FindSigner(sd.Certificates)
	return ts, nil
}

// Verify checks the token's own signature (with extra certificates to find
// the TSA certificate if the token lacks it), the TSA certificate's
// timeStamping purpose, and that the imprint is the digest of data under
// the imprint's algorithm. digest computes that digest for a hash.
func (ts *Timestamp) Verify(digest func(crypto.Hash) ([]byte, error), extra []*x509.Certificate, alg *path.AlgorithmPolicy) error {
	if ts.Cert == nil {
		ts.Cert = ts.Signer.FindSigner(extra)
	}
	if ts.Cert == nil {
		return fmt.Errorf("%w: TSA certificate", ErrNoSigningCert)
	}
	h := Hash(ts.Signer.DigestAlg.Algorithm)
	if h == 0 || !h.Available() {
		return fmt.Errorf("%w: timestamp digest algorithm", path.ErrCrypto)
	}
	d := h.New()
	d.Write(ts.Signed.Content)
	if err := ts.Signed.VerifySigner(ts.Signer, ts.Cert, d.Sum(nil), alg); err != nil {
		return fmt.Errorf("timestamp token: %w", err)
	}
	if err := path.ExtKeyUsage(ts.Cert, []string{"timeStamping"}); err != nil || len(ts.Cert.ExtKeyUsage) == 0 {
		return fmt.Errorf("%w: TSA certificate lacks the timeStamping purpose", ErrNoSigningCert)
	}
	ih := ts.Info.HashAlgorithm
	if ih == 0 || !ih.Available() {
		return fmt.Errorf("%w: imprint hash algorithm", path.ErrCrypto)
	}
	if err := alg.CheckHash(ih); err != nil {
		return err
	}
	want, err := digest(ih)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, ts.Info.HashedMessage) {
		return ErrImprint
	}
	return nil
}

// DigestOf returns a digest function over fixed bytes.
func DigestOf(data []byte) func(crypto.Hash) ([]byte, error) {
	return func(h crypto.Hash) ([]byte, error) {
		d := h.New()
		d.Write(data)
		return d.Sum(nil), nil
	}
}

// SigningTime returns the signing-time signed attribute, if any.
func (s *SignerInfo) SigningTime() (time.Time, bool) {
	v, ok := Attr(s.SignedAttrs, OIDAttrSigningTime)
	if !ok || len(v) != 1 {
		return time.Time{}, false
	}
	var t time.Time
	if _, err := asn1.Unmarshal(v[0], &t); err != nil {
		return time.Time{}, false
	}
	return t, true
}

// RevocationValues returns CRLs and OCSP responses from the Adobe
// revocationInfoArchival signed attribute.
func (s *SignerInfo) RevocationValues() (crls, ocsps [][]byte) {
	v, ok := Attr(s.SignedAttrs, OIDAttrAdobeRevocation)
	if !ok || len(v) != 1 {
		return nil, nil
	}
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(v[0], &seq); err != nil {
		return nil, nil
	}
	rest := seq.Bytes
	for len(rest) > 0 {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return
		}
		var list []asn1.RawValue
		if _, err := asn1.Unmarshal(f.Bytes, &list); err != nil {
			continue
		}
		for _, item := range list {
			switch f.Tag {
			case 0:
				crls = append(crls, item.FullBytes)
			case 1:
				ocsps = append(ocsps, item.FullBytes)
			}
		}
	}
	return crls, ocsps
}
