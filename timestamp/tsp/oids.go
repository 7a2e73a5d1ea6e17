// Package tsp encodes and decodes the RFC 3161 Time-Stamp Protocol messages
// (TimeStampReq, TimeStampResp, TSTInfo) and the CMS SignedData that carries
// a time-stamp token, with RFC 5816 ESSCertIDv2. Parsing is strict DER:
// non-minimal encodings, explicitly encoded DEFAULT values, unknown fields and
// trailing data are refused. Nothing here panics on input.
package tsp

import (
	"crypto"
	"encoding/asn1"
)

// Object identifiers used by the time-stamp protocol and its CMS envelope.
var (
	OIDSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	OIDTSTInfo       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	OIDContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	// OIDSigningCertificateV2 is id-aa-signingCertificateV2 (RFC 5035).
	OIDSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}

	OIDSHA1     = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	OIDMD5      = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	OIDSHA224   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	OIDSHA256   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDSHA384   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	OIDSHA512   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	OIDSHA3_256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 8}
	OIDSHA3_384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 9}
	OIDSHA3_512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 10}

	OIDECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	OIDSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	OIDSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	OIDRSASSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	OIDMGF1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}

	// OIDQCStatements is id-pe-qcStatements (RFC 3739), the extension that
	// carries the ETSI qualified time-stamp statement in TSTInfo.
	OIDQCStatements = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	// OIDQTSTStatement is id-etsi-tsts-EuQCompliance (EN 319 422 Annex B),
	// the statement esi4-qtstStatement-1: the token is an EU qualified
	// electronic time-stamp.
	OIDQTSTStatement = asn1.ObjectIdentifier{0, 4, 0, 19422, 1, 1}
	// OIDETSIBestPracticesPolicy is the EN 319 421 best-practices TSA policy.
	OIDETSIBestPracticesPolicy = asn1.ObjectIdentifier{0, 4, 0, 2023, 1, 1}
)

var hashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{OIDSHA256, crypto.SHA256},
	{OIDSHA384, crypto.SHA384},
	{OIDSHA512, crypto.SHA512},
	{OIDSHA3_256, crypto.SHA3_256},
	{OIDSHA3_384, crypto.SHA3_384},
	{OIDSHA3_512, crypto.SHA3_512},
	{OIDSHA224, crypto.SHA224},
	{OIDSHA1, crypto.SHA1},
	{OIDMD5, crypto.MD5},
}

// HashFromOID returns the hash function an algorithm identifier names, and
// false for an algorithm this package does not know.
func HashFromOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, h := range hashes {
		if h.oid.Equal(oid) {
			return h.hash, true
		}
	}
	return 0, false
}

// OIDFromHash returns the algorithm identifier of h, and false when it has none here.
func OIDFromHash(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	for _, e := range hashes {
		if e.hash == h {
			return e.oid, true
		}
	}
	return nil, false
}
