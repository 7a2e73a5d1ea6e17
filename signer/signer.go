// Package signer produces PAdES baseline signatures (ETSI EN 319 142-1,
// levels B-B, B-T, B-LT and B-LTA) on PDF documents: approval and
// certification signatures, e-seals, document time-stamps and the DSS
// dictionary, each written as an incremental update appended to the
// unchanged original bytes.
//
// Signing takes a crypto.Signer and the signer's certificate chain. The
// input is read through an io.ReaderAt and the byte ranges are hashed by
// streaming, so large documents are never held in memory; the output is
// written once, in order, to an io.Writer, and nothing is written when any
// step (the time-stamp authority included) fails.
package signer

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// Errors callers decide on (test with errors.Is).
var (
	// ErrNotPDF reports input that is not a PDF.
	ErrNotPDF = pdfdoc.ErrNotPDF
	// ErrEncrypted reports an encrypted PDF, which is refused.
	ErrEncrypted = pdfdoc.ErrEncrypted
	// ErrMalformed reports a PDF whose structure cannot be read (truncated
	// file, broken cross-reference table, missing catalog…).
	ErrMalformed = pdfdoc.ErrMalformed
	// ErrCertificationForbids reports a document whose certification
	// signature (DocMDP P=1) forbids any further signature.
	ErrCertificationForbids = errors.New("signer: the certification signature forbids changes")
	// ErrAlreadySigned reports a certification requested on a document that
	// already carries signatures (a certification signature must be first).
	ErrAlreadySigned = errors.New("signer: document already signed; a certification signature must be the first")
	// ErrTimestamp reports a failure to obtain a time-stamp token.
	ErrTimestamp = errors.New("signer: time-stamp authority failed")
	// ErrRevocation reports missing revocation data for a certificate (B-LT).
	ErrRevocation = errors.New("signer: revocation data unavailable")
	// ErrNoSignature reports that Extend found no signature to extend.
	ErrNoSignature = errors.New("signer: document has no signature")
	// ErrOptions reports invalid options.
	ErrOptions = errors.New("signer: invalid options")
)

// Level is a PAdES baseline level.
type Level int

// PAdES baseline levels.
const (
	LevelBB Level = iota + 1
	LevelBT
	LevelBLT
	LevelBLTA
)

// String returns the level's name ("B-B" …).
func (l Level) String() string {
	switch l {
	case LevelBB:
		return "B-B"
	case LevelBT:
		return "B-T"
	case LevelBLT:
		return "B-LT"
	case LevelBLTA:
		return "B-LTA"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses "B-B", "B-T", "B-LT" or "B-LTA" (case-insensitive;
// the "PAdES-" prefix is accepted).
func ParseLevel(s string) (Level, error) {
	switch strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "PADES-") {
	case "B-B":
		return LevelBB, nil
	case "B-T":
		return LevelBT, nil
	case "B-LT":
		return LevelBLT, nil
	case "B-LTA":
		return LevelBLTA, nil
	}
	return 0, fmt.Errorf("%w: unknown PAdES level %q", ErrOptions, s)
}

// TimestampClient obtains an RFC 3161 TimeStampToken (DER ContentInfo)
// over digest, computed with hash. timestamp.Client satisfies it.
type TimestampClient interface {
	Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error)
}

// RevocationSource supplies revocation data for the DSS: a DER OCSP
// response for cert (issued by issuer), or the issuer's current DER CRL.
type RevocationSource interface {
	OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error)
	CRL(ctx context.Context, issuer *x509.Certificate) ([]byte, error)
}

// ValidationOptions say where the validation data of B-T, B-LT and B-LTA
// come from.
type ValidationOptions struct {
	// TSA issues signature and document time-stamps (B-T and above).
	TSA TimestampClient
	// TimestampHash is the digest algorithm sent to the TSA (default SHA-256).
	TimestampHash crypto.Hash
	// Revocation supplies OCSP responses and CRLs (B-LT and above).
	Revocation RevocationSource
	// ExtraCerts are further certificates for the DSS: the TSA's chain,
	// roots, anything needed to build the paths.
	ExtraCerts []*x509.Certificate
	// AllowMissingRevocation keeps going when no OCSP response or CRL can
	// be had for a certificate (the DSS then lacks it); by default that is
	// an ErrRevocation error.
	AllowMissingRevocation bool
	// VRI adds a /VRI entry per signature to the DSS.
	VRI bool
	// Cache, when set, remembers across signatures what gathering the
	// validation data learns about certificates (see Cache); nil checks
	// everything afresh each time.
	Cache *Cache
	// Timeout bounds each call to the TSA and to the revocation source
	// (default 10 s), whatever the caller's context allows.
	Timeout time.Duration
}

// callContext returns the context for one call to the TSA or the
// revocation source.
func (v ValidationOptions) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := v.Timeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

func (v ValidationOptions) tsHash() crypto.Hash {
	if v.TimestampHash == 0 {
		return crypto.SHA256
	}
	return v.TimestampHash
}

// mapErr keeps the sentinel errors of pdfdoc recognisable and adds context.
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("signer: %s: %w", what, err)
}
