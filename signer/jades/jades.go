// Package jades produces JAdES baseline signatures (ETSI TS 119 182-1,
// levels B-B and B-T) over JSON documents: a JWS whose protected header
// carries alg, x5t#S256, x5c, kid (the signer's issuer-serial), sigT (the
// claimed signing time) and crit ["sigT"], in the JWS JSON serialization
// (flattened) or the compact one, with the payload attached or detached.
//
// The JWS itself is made by github.com/go-jose/go-jose/v4 (through
// internal/josesigner, so the key stays on its token). Two things go-jose
// cannot express, and this package adds them as the smallest layer over
// its output: the unprotected header (go-jose only writes protected
// headers), which B-T needs for etsiU (the signature time-stamp, sigTst,
// over the base64url signature value), and a detached payload in the JSON
// serialization (go-jose detaches only compact ones). go-jose also refuses
// to verify a JWS whose crit names sigT, so relying parties use
// package verify, which checks JAdES itself.
package jades

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/josesigner"
)

// Errors callers decide on (test with errors.Is).
var (
	// ErrOptions reports invalid options or input.
	ErrOptions = errors.New("jades: invalid options")
	// ErrTimestamp reports a failure to obtain the signature time-stamp.
	ErrTimestamp = errors.New("jades: time-stamp authority failed")
)

// Level is a JAdES baseline level: B-B or B-T.
type Level string

// JAdES baseline levels made here.
const (
	LevelBB Level = "B-B"
	LevelBT Level = "B-T"
)

// TimestampClient obtains an RFC 3161 TimeStampToken over digest
// (signer.TimestampClient has the same method).
type TimestampClient interface {
	Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error)
}

// Options describe one JAdES signature.
type Options struct {
	// Level is B-B (default) or B-T.
	Level Level
	// Signer is the key; Chain the signer's certificate first, then its
	// issuers (all go into x5c).
	Signer crypto.Signer
	Chain  []*x509.Certificate
	// Algorithm is RS256 or PS256 for an RSA key (default PS256); an EC key
	// signs with ES256 (P-256) or ES384 (P-384).
	Algorithm string
	// Compact asks for the compact serialization (B-B only: it has no
	// unprotected header); the default is the flattened JSON one.
	Compact bool
	// Detached leaves the payload out of the signature.
	Detached bool
	// Time is the claimed signing time (sigT; default now).
	Time time.Time
	// TSA issues the signature time-stamp of B-T; Timeout bounds the call
	// (default 10 s).
	TSA     TimestampClient
	Timeout time.Duration
}

// Result is a JAdES signature.
type Result struct {
	// JWS is the serialized signature.
	JWS []byte
	// Algorithm is the JWS alg used.
	Algorithm string
	// SignatureValue is the base64url JWS Signature Value.
	SignatureValue string
}

// flattened is the flattened JWS JSON serialization (RFC 7515 §7.2.2).
type flattened struct {
	Payload   *string         `json:"payload,omitempty"`
	Protected string          `json:"protected"`
	Header    json.RawMessage `json:"header,omitempty"`
	Signature string          `json:"signature"`
}

// Sign signs the JSON document payload.
func Sign(ctx context.Context, payload []byte, o Options) (*Result, error) {
	if o.Level == "" {
		o.Level = LevelBB
	}
	switch {
	case o.Level != LevelBB && o.Level != LevelBT:
		return nil, fmt.Errorf("%w: level %q (B-B or B-T)", ErrOptions, o.Level)
	case o.Signer == nil || len(o.Chain) == 0 || o.Chain[0] == nil:
		return nil, fmt.Errorf("%w: a signer and its certificate are required", ErrOptions)
	case o.Level == LevelBT && o.Compact:
		return nil, fmt.Errorf("%w: the compact serialization has no unprotected header for the B-T time-stamp: use the JSON serialization", ErrOptions)
	case o.Level == LevelBT && o.TSA == nil:
		return nil, fmt.Errorf("%w: B-T needs a time-stamp authority", ErrOptions)
	case !json.Valid(payload):
		return nil, fmt.Errorf("%w: the document is not JSON", ErrOptions)
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	alg, err := algorithm(o.Signer.Public(), o.Algorithm)
	if err != nil {
		return nil, err
	}
	leaf := o.Chain[0]
	kid, err := issuerSerial(leaf)
	if err != nil {
		return nil, err
	}
	opaque, err := josesigner.New(o.Signer, kid, josesigner.WithAlgorithm(alg))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	thumb := sha256.Sum256(leaf.Raw)
	x5c := make([]string, len(o.Chain))
	for i, c := range o.Chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	so := (&jose.SignerOptions{}).
		WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(thumb[:])).
		WithHeader("x5c", x5c).
		WithHeader("sigT", o.Time.UTC().Format("2006-01-02T15:04:05Z")).
		WithContentType("json").
		WithCritical("sigT")
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: opaque}, so)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("jades: signing: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("jades: serializing: %w", err)
	}
	parts := strings.Split(compact, ".")
	res := &Result{Algorithm: string(alg), SignatureValue: parts[2]}
	if o.Compact {
		if o.Detached {
			parts[1] = ""
		}
		res.JWS = []byte(strings.Join(parts, "."))
		return res, nil
	}
	f := flattened{Protected: parts[0], Signature: parts[2]}
	if !o.Detached {
		f.Payload = &parts[1]
	}
	if o.Level == LevelBT {
		if f.Header, err = etsiU(ctx, o, parts[2]); err != nil {
			return nil, err
		}
	}
	if res.JWS, err = json.Marshal(f); err != nil {
		return nil, err
	}
	return res, nil
}

// etsiU returns the unprotected header of B-T: etsiU holding, base64url
// encoded, {"sigTst":{"tstTokens":[{"val": token}]}}, the token's imprint
// being the SHA-256 of the base64url JWS Signature Value (TS 119 182-1
// §5.3.4.1).
func etsiU(ctx context.Context, o Options, sigValue string) (json.RawMessage, error) {
	d := sha256.Sum256([]byte(sigValue))
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tok, err := o.TSA.Timestamp(tctx, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: signature time-stamp: %w", ErrTimestamp, err)
	}
	type val struct {
		Val string `json:"val"`
	}
	type sigTst struct {
		TstTokens []val `json:"tstTokens"`
	}
	elem, err := json.Marshal(map[string]sigTst{"sigTst": {TstTokens: []val{{Val: base64.StdEncoding.EncodeToString(tok)}}}})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string][]string{"etsiU": {base64.RawURLEncoding.EncodeToString(elem)}})
}

// algorithm picks the JWS algorithm of a key.
func algorithm(pub crypto.PublicKey, want string) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		var alg jose.SignatureAlgorithm
		switch k.Curve.Params().BitSize {
		case 256:
			alg = jose.ES256
		case 384:
			alg = jose.ES384
		default:
			return "", fmt.Errorf("%w: curve %s (P-256 or P-384)", ErrOptions, k.Curve.Params().Name)
		}
		if want != "" && want != string(alg) {
			return "", fmt.Errorf("%w: a %s key signs with %s, not %s", ErrOptions, k.Curve.Params().Name, alg, want)
		}
		return alg, nil
	case *rsa.PublicKey:
		switch want {
		case "", "PS256":
			return jose.PS256, nil
		case "RS256":
			return jose.RS256, nil
		}
		return "", fmt.Errorf("%w: an RSA key signs with PS256 or RS256, not %s", ErrOptions, want)
	}
	return "", fmt.Errorf("%w: unsupported key type %T", ErrOptions, pub)
}

// issuerSerial returns the base64 DER IssuerSerial (RFC 5035) of c: the
// kid of JAdES.
func issuerSerial(c *x509.Certificate) (string, error) {
	type is struct {
		Issuer []asn1.RawValue
		Serial *big.Int
	}
	dn := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: c.RawIssuer}
	der, err := asn1.Marshal(is{Issuer: []asn1.RawValue{dn}, Serial: c.SerialNumber})
	if err != nil {
		return "", fmt.Errorf("jades: issuer-serial: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
