package cms

import (
	"bytes"
	"crypto"
	"crypto/sha1" //nolint:gosec // signing-certificate v1 binding is defined with SHA-1
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/thiqa/thiqa/verify/path"
)

// Failure classes a caller maps to ETSI sub-indications.
var (
	// ErrHashFailure: the message-digest attribute does not match the content.
	ErrHashFailure = errors.New("message digest does not match")
	// ErrSigCrypto: the signature value does not verify.
	ErrSigCrypto = errors.New("signature value does not verify")
	// ErrNoSigningCert: the signer's certificate is missing or does not
	// match the signing-certificate attribute.
	ErrNoSigningCert = errors.New("signing certificate not found")
	// ErrFormat: a structural rule of CMS is violated.
	ErrFormat = errors.New("CMS format failure")
)

// Hash maps a digest AlgorithmIdentifier to a crypto.Hash (0 if unknown).
func Hash(oid asn1.ObjectIdentifier) crypto.Hash {
	switch oid.String() {
	case "1.2.840.113549.2.5":
		return crypto.MD5
	case "1.3.14.3.2.26":
		return crypto.SHA1
	case "2.16.840.1.101.3.4.2.4":
		return crypto.SHA224
	case "2.16.840.1.101.3.4.2.1":
		return crypto.SHA256
	case "2.16.840.1.101.3.4.2.2":
		return crypto.SHA384
	case "2.16.840.1.101.3.4.2.3":
		return crypto.SHA512
	case "2.16.840.1.101.3.4.2.8":
		return crypto.SHA3_256
	case "2.16.840.1.101.3.4.2.9":
		return crypto.SHA3_384
	case "2.16.840.1.101.3.4.2.10":
		return crypto.SHA3_512
	}
	return 0
}

// FindSigner returns the certificate identified by the SignerInfo's sid.
func (s *SignerInfo) FindSigner(certs []*x509.Certificate) *x509.Certificate {
	for _, c := range certs {
		if s.SubjectKeyID != nil {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, s.SubjectKeyID) {
				return c
			}
			continue
		}
		if s.Serial != nil && c.SerialNumber.Cmp(s.Serial) == 0 && bytes.Equal(c.RawIssuer, s.IssuerRaw) {
			return c
		}
	}
	return nil
}

// sigAlgorithm maps the SignerInfo's signatureAlgorithm (and digest) to an
// x509 signature algorithm.
func (s *SignerInfo) sigAlgorithm(h crypto.Hash, pub any) (x509.SignatureAlgorithm, error) {
	oid := s.SigAlg.Algorithm.String()
	pick := func(m map[crypto.Hash]x509.SignatureAlgorithm) (x509.SignatureAlgorithm, error) {
		if a, ok := m[h]; ok {
			return a, nil
		}
		return 0, fmt.Errorf("%w: digest %v with %s", path.ErrCrypto, h, oid)
	}
	rsaPKCS1 := map[crypto.Hash]x509.SignatureAlgorithm{crypto.MD5: x509.MD5WithRSA, crypto.SHA1: x509.SHA1WithRSA,
		crypto.SHA256: x509.SHA256WithRSA, crypto.SHA384: x509.SHA384WithRSA, crypto.SHA512: x509.SHA512WithRSA}
	ecdsaM := map[crypto.Hash]x509.SignatureAlgorithm{crypto.SHA1: x509.ECDSAWithSHA1, crypto.SHA256: x509.ECDSAWithSHA256,
		crypto.SHA384: x509.ECDSAWithSHA384, crypto.SHA512: x509.ECDSAWithSHA512}
	pss := map[crypto.Hash]x509.SignatureAlgorithm{crypto.SHA256: x509.SHA256WithRSAPSS, crypto.SHA384: x509.SHA384WithRSAPSS, crypto.SHA512: x509.SHA512WithRSAPSS}
	switch oid {
	case "1.2.840.113549.1.1.1":
		return pick(rsaPKCS1)
	case "1.2.840.113549.1.1.4", "1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13":
		want := map[string]crypto.Hash{"1.2.840.113549.1.1.4": crypto.MD5, "1.2.840.113549.1.1.5": crypto.SHA1,
			"1.2.840.113549.1.1.11": crypto.SHA256, "1.2.840.113549.1.1.12": crypto.SHA384, "1.2.840.113549.1.1.13": crypto.SHA512}[oid]
		if want != h {
			return 0, fmt.Errorf("%w: signature algorithm %s does not match digest %v", ErrFormat, oid, h)
		}
		return pick(rsaPKCS1)
	case "1.2.840.113549.1.1.10":
		return pick(pss)
	case "1.2.840.10045.2.1", "1.2.840.10045.4.1", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4":
		return pick(ecdsaM)
	case "1.3.101.112":
		return x509.PureEd25519, nil
	}
	return 0, fmt.Errorf("%w: signature algorithm %s", path.ErrCrypto, oid)
}

// VerifySigner checks one SignerInfo: contentDigest is the digest of the
// (detached or encapsulated) content computed with the SignerInfo's digest
// algorithm. It checks the content-type and message-digest attributes, the
// signature value with cert's key under alg, and the signing-certificate(-v2)
// binding. Errors wrap ErrHashFailure, ErrSigCrypto, ErrNoSigningCert,
// ErrFormat or path.ErrCrypto.
func (sd *SignedData) VerifySigner(s *SignerInfo, cert *x509.Certificate, contentDigest []byte, alg *path.AlgorithmPolicy) error {
	h := Hash(s.DigestAlg.Algorithm)
	if h == 0 || !h.Available() {
		return fmt.Errorf("%w: digest algorithm %s", path.ErrCrypto, s.DigestAlg.Algorithm)
	}
	if cert == nil {
		return ErrNoSigningCert
	}
	sa, err := s.sigAlgorithm(h, cert.PublicKey)
	if err != nil {
		return err
	}
	if s.SignedAttrsDER == nil {
		if !sd.ContentType.Equal(OIDData) {
			return fmt.Errorf("%w: signed attributes required for content type %s", ErrFormat, sd.ContentType)
		}
		if err := alg.CheckHash(h); err != nil {
			return err
		}
		if err := alg.CheckKey(cert.PublicKey); err != nil {
			return err
		}
		if sa == x509.PureEd25519 {
			return fmt.Errorf("%w: Ed25519 without signed attributes", path.ErrCrypto)
		}
		if err := path.VerifyDigest(sa, cert.PublicKey, h, contentDigest, s.Signature); err != nil {
			return fmt.Errorf("%w: %v", ErrSigCrypto, err)
		}
		return nil
	}
	for _, t := range []asn1.ObjectIdentifier{OIDAttrContentType, OIDAttrMessageDigest, OIDAttrSigningTime, OIDAttrSigningCertV2, OIDAttrSigningCert} {
		if CountAttr(s.SignedAttrs, t) > 1 {
			return fmt.Errorf("%w: signed attribute %s repeated", ErrFormat, t)
		}
	}
	ct, ok := Attr(s.SignedAttrs, OIDAttrContentType)
	var ctOID asn1.ObjectIdentifier
	if !ok || len(ct) != 1 {
		return fmt.Errorf("%w: no content-type attribute", ErrFormat)
	}
	if rest, err := asn1.Unmarshal(ct[0], &ctOID); err != nil || len(rest) > 0 || !ctOID.Equal(sd.ContentType) {
		return fmt.Errorf("%w: content-type attribute does not match", ErrFormat)
	}
	md, ok := Attr(s.SignedAttrs, OIDAttrMessageDigest)
	if !ok || len(md) != 1 {
		return fmt.Errorf("%w: no message-digest attribute", ErrFormat)
	}
	var mdv []byte
	if rest, err := asn1.Unmarshal(md[0], &mdv); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: malformed message-digest attribute", ErrFormat)
	}
	// Signature first: a wrong key or algorithm is reported as such even
	// when the content was changed too.
	if err := alg.VerifySignature(sa, cert.PublicKey, s.SignedAttrsDER, s.Signature); err != nil {
		if errors.Is(err, path.ErrCrypto) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrSigCrypto, err)
	}
	if !bytes.Equal(mdv, contentDigest) {
		return ErrHashFailure
	}
	return s.checkSigningCert(cert)
}

type issuerSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// checkSigningCert checks the signing-certificate(-v2) attribute (if any)
// against cert: the first ESSCertID must hash to the certificate.
func (s *SignerInfo) checkSigningCert(cert *x509.Certificate) error {
	if v, ok := Attr(s.SignedAttrs, OIDAttrSigningCertV2); ok && len(v) == 1 {
		var sc struct {
			Certs []asn1.RawValue
		}
		if _, err := asn1.Unmarshal(v[0], &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: malformed signing-certificate-v2", ErrFormat)
		}
		h, certHash, err := parseESSCertIDv2(sc.Certs[0].FullBytes)
		if err != nil {
			return err
		}
		if h == 0 || !h.Available() {
			return fmt.Errorf("%w: signing-certificate-v2 hash algorithm", path.ErrCrypto)
		}
		d := h.New()
		d.Write(cert.Raw)
		if !bytes.Equal(d.Sum(nil), certHash) {
			return fmt.Errorf("%w: signing-certificate-v2 does not match the signer's certificate", ErrNoSigningCert)
		}
		return nil
	}
	if v, ok := Attr(s.SignedAttrs, OIDAttrSigningCert); ok && len(v) == 1 {
		var sc struct {
			Certs []struct {
				CertHash     []byte
				IssuerSerial issuerSerial `asn1:"optional"`
			}
		}
		if _, err := asn1.Unmarshal(v[0], &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: malformed signing-certificate", ErrFormat)
		}
		sum := sha1.Sum(cert.Raw)
		if !bytes.Equal(sum[:], sc.Certs[0].CertHash) {
			return fmt.Errorf("%w: signing-certificate does not match the signer's certificate", ErrNoSigningCert)
		}
	}
	return nil
}

func parseESSCertIDv2(der []byte) (crypto.Hash, []byte, error) {
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(der, &seq); err != nil {
		return 0, nil, fmt.Errorf("%w: malformed ESSCertIDv2", ErrFormat)
	}
	rest := seq.Bytes
	h := crypto.SHA256
	var first asn1.RawValue
	r, err := asn1.Unmarshal(rest, &first)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: malformed ESSCertIDv2", ErrFormat)
	}
	if first.Tag == asn1.TagSequence {
		var ai struct {
			Algorithm asn1.ObjectIdentifier
			Params    asn1.RawValue `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(first.FullBytes, &ai); err != nil {
			return 0, nil, fmt.Errorf("%w: malformed ESSCertIDv2 hash algorithm", ErrFormat)
		}
		h = Hash(ai.Algorithm)
		if _, err := asn1.Unmarshal(r, &first); err != nil {
			return 0, nil, fmt.Errorf("%w: malformed ESSCertIDv2", ErrFormat)
		}
	}
	if first.Tag != asn1.TagOctetString {
		return 0, nil, fmt.Errorf("%w: malformed ESSCertIDv2 certHash", ErrFormat)
	}
	return h, first.Bytes, nil
}
