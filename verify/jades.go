package verify

// JAdES (ETSI TS 119 182-1) signatures over JSON documents, judged with the
// same verdicts, levels and identity as PAdES. go-jose (which signs them in
// package signer/jades) refuses to verify a JWS whose crit names sigT, so
// the JWS is checked here: its serialization, its protected header, the
// signature value with the x5c certificate's key under the algorithm
// policy, the certificate path and revocation, and the etsiU signature
// time-stamps.

import (
	"bytes"
	"context"
	"crypto"
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

	"github.com/thiqa/thiqa/verify/path"
	"github.com/thiqa/thiqa/verify/report"
)

// FormatJAdES is report.Signature.Format of a JAdES signature.
const FormatJAdES = "JAdES"

// maxJWSCerts bounds the x5c chain.
const maxJWSCerts = 16

// jws is a parsed JWS with one signature.
type jws struct {
	protectedB64, payloadB64, sigB64 string
	header                           json.RawMessage // unprotected
	detached                         bool
}

// errJWS marks a body that is not a JWS with one signature.
var errJWS = errors.New("not a JWS with one signature")

// LooksLikeJWS reports whether b is a JWS rather than a PDF: JSON (an
// object) or three base64url parts separated by dots.
func LooksLikeJWS(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		return true
	}
	if len(b) == 0 || bytes.Count(b, []byte(".")) != 2 {
		return false
	}
	for _, c := range b {
		if c != '.' && c != '-' && c != '_' && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseJWS reads the compact serialization or the JSON one (flattened, or
// general with exactly one signature).
func parseJWS(b []byte) (*jws, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var raw struct {
			Payload    *string         `json:"payload"`
			Protected  string          `json:"protected"`
			Header     json.RawMessage `json:"header"`
			Signature  string          `json:"signature"`
			Signatures []struct {
				Protected string          `json:"protected"`
				Header    json.RawMessage `json:"header"`
				Signature string          `json:"signature"`
			} `json:"signatures"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("%w: %v", errJWS, err)
		}
		j := &jws{protectedB64: raw.Protected, header: raw.Header, sigB64: raw.Signature}
		if raw.Signatures != nil {
			if len(raw.Signatures) != 1 || raw.Signature != "" {
				return nil, fmt.Errorf("%w: it holds %d signatures", errJWS, len(raw.Signatures))
			}
			s := raw.Signatures[0]
			j.protectedB64, j.header, j.sigB64 = s.Protected, s.Header, s.Signature
		}
		if raw.Payload == nil {
			j.detached = true
		} else {
			j.payloadB64 = *raw.Payload
		}
		if j.protectedB64 == "" || j.sigB64 == "" {
			return nil, fmt.Errorf("%w: no protected header or no signature", errJWS)
		}
		return j, nil
	}
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return nil, errJWS
	}
	return &jws{protectedB64: parts[0], payloadB64: parts[1], sigB64: parts[2], detached: parts[1] == ""}, nil
}

// protectedHeader is what a JAdES baseline signature's protected header
// carries (the members this verifier reads).
type protectedHeader struct {
	Alg     string   `json:"alg"`
	X5c     []string `json:"x5c"`
	X5tS256 string   `json:"x5t#S256"`
	Kid     string   `json:"kid"`
	SigT    string   `json:"sigT"`
	Crit    []string `json:"crit"`
	B64     *bool    `json:"b64"`
}

// understood are the crit names this verifier processes.
var understood = map[string]bool{"sigT": true, "b64": true}

// jwsAlgorithms maps JWS algorithms to x509 ones.
var jwsAlgorithms = map[string]x509.SignatureAlgorithm{
	"ES256": x509.ECDSAWithSHA256, "ES384": x509.ECDSAWithSHA384, "ES512": x509.ECDSAWithSHA512,
	"RS256": x509.SHA256WithRSA, "RS384": x509.SHA384WithRSA, "RS512": x509.SHA512WithRSA,
	"PS256": x509.SHA256WithRSAPSS, "PS384": x509.SHA384WithRSAPSS, "PS512": x509.SHA512WithRSAPSS,
}

// VerifyJAdES validates the JAdES signature (TS 119 182-1) b: a JWS in the
// compact or JSON serialization. payload is the signed document when the
// JWS leaves it out (detached), else nil. The report has the shape of a
// PDF's (one signature, Format "JAdES", level B-B or B-T, none when TOTAL-FAILED); the error is
// non-nil only when validation could not run at all.
func (v *Verifier) VerifyJAdES(ctx context.Context, b, payload []byte) (*report.Report, error) {
	if int64(len(b)) > v.opts.MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	at := v.now()
	rep := &report.Report{ValidationTime: at, DocumentSize: int64(len(b)), Signatures: []report.Signature{}}
	if !v.hasAnchors() {
		rep.Warnings = append(rep.Warnings, NoAnchorWarning)
	}
	j, err := parseJWS(b)
	if err != nil {
		return notParsed(rep, err), nil
	}
	sr := report.Signature{Kind: "signature", Format: FormatJAdES, Indication: report.TotalPassed, CoversWholeDocument: true}
	v.judgeJWS(ctx, at, j, payload, &sr)
	rep.Signatures = append(rep.Signatures, sr)
	rep.Finish()
	return rep, nil
}

// judgeJWS fills sr with the verdict on j.
func (v *Verifier) judgeJWS(ctx context.Context, at time.Time, j *jws, payload []byte, sr *report.Signature) {
	st := sigState{sr}
	ph, rawHeader, err := decodeProtected(j.protectedB64)
	if err != nil {
		st.fail(report.TotalFailed, report.FormatFailure, "%v", err)
		return
	}
	for _, c := range ph.Crit {
		if !understood[c] {
			st.fail(report.TotalFailed, report.FormatFailure, "the critical header %q is not understood", c)
			return
		}
	}
	if ph.SigT != "" {
		if t, err := time.Parse(time.RFC3339, ph.SigT); err == nil {
			t = t.UTC()
			sr.ClaimedSigningTime = &t
		} else {
			st.fail(report.TotalFailed, report.FormatFailure, "sigT %q is not an RFC 3339 time", ph.SigT)
		}
	} else {
		st.warn("no sigT (claimed signing time) in the protected header, which a JAdES baseline signature has")
	}
	if _, ok := rawHeader["sigT"]; ok && !contains(ph.Crit, "sigT") {
		st.warn("sigT is not listed in crit")
	}
	alg, ok := jwsAlgorithms[ph.Alg]
	if !ok {
		st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "JWS algorithm %q is not supported", ph.Alg)
		return
	}
	sr.SignatureAlgorithm = ph.Alg
	certs, err := x5c(ph.X5c)
	if err != nil {
		st.fail(report.TotalFailed, report.FormatFailure, "%v", err)
		return
	}
	cert := signingCertificate(certs, ph.X5tS256)
	if cert == nil {
		st.fail(report.Indeterminate, report.NoSigningCertificateFound, "no x5c certificate is the one x5t#S256 names (or there is none)")
		return
	}
	sr.Signer = v.describeSigner(cert)
	if ph.Kid != "" && !kidNames(ph.Kid, cert) {
		st.warn("kid is not the issuer-serial of the signing certificate")
	}
	// The signing input: BASE64URL(protected) "." BASE64URL(payload), or
	// the payload itself with b64 false (RFC 7797).
	payloadPart := []byte(j.payloadB64)
	switch {
	case j.detached && payload == nil:
		st.fail(report.Indeterminate, report.SignedDataNotFound, "the payload is detached: give the signed document to check the signature")
		return
	case j.detached && ph.B64 != nil && !*ph.B64:
		payloadPart = payload
	case j.detached:
		payloadPart = []byte(base64.RawURLEncoding.EncodeToString(payload))
	case ph.B64 != nil && !*ph.B64:
		payloadPart = []byte(j.payloadB64)
	}
	signed := append(append([]byte(j.protectedB64), '.'), payloadPart...)
	sig, err := base64.RawURLEncoding.DecodeString(j.sigB64)
	if err != nil {
		st.fail(report.TotalFailed, report.FormatFailure, "the signature value is not base64url")
		return
	}
	if strings.HasPrefix(ph.Alg, "ES") {
		if sig, err = rsToDER(sig); err != nil {
			st.fail(report.TotalFailed, report.SigCryptoFailure, "%v", err)
			return
		}
	}
	if err := v.opts.Algorithms.VerifySignature(alg, cert.PublicKey, signed, sig); err != nil {
		if errors.Is(err, path.ErrCrypto) {
			st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "%v", err)
		} else {
			st.fail(report.TotalFailed, report.SigCryptoFailure, "the signature does not verify over the protected header and the payload: the document was changed after signing, or signed with another key (%v)", err)
		}
		return
	}
	sr.SignatureIntact = true
	checkSignerUsage(st, cert)
	dc := &docContext{ctx: v.fetchContext(ctx), at: at, dssRev: -1, memo: v.ocsp, certs: v.certs, bufs: &v.bufs, crls: crlMemo{}}
	var poe time.Time
	for _, tok := range sigTimestamps(j.header, st) {
		tr := v.verifyTimestamp(dc, tok, func(h crypto.Hash) ([]byte, error) {
			hh := h.New()
			hh.Write([]byte(j.sigB64))
			return hh.Sum(nil), nil
		}, "signature", certs, time.Time{})
		sr.Timestamps = append(sr.Timestamps, tr)
		if tr.Indication == report.TotalPassed && (poe.IsZero() || tr.Time.Before(poe)) {
			poe = tr.Time
		}
	}
	if !poe.IsZero() {
		t := poe
		sr.ProvenSigningTime = &t
	}
	rd := &revocationData{memo: dc.memo, crlMemo: dc.crls, ctx: dc.ctx, fetcher: v.opts.Fetcher, online: v.opts.AllowOnline,
		public: v.opts.Public, log: v.log, policy: v.opts.Revocation, timeout: v.opts.FetchTimeout, pool: certs, sigTime: poe} // sigT is a claim, not a POE
	res, perr, pathAt := v.validatePath(dc, cert, certs, rd, poe)
	for _, w := range rd.warnings {
		st.warn("%s", w)
	}
	if perr != nil {
		mapPathError(st, perr, sr.ClaimedSigningTime)
	} else {
		for i := len(res.Chain) - 1; i >= 0; i-- {
			sr.Chain = append(sr.Chain, res.Chain[i].Subject.String())
		}
		if !pathAt.Equal(at) {
			st.warn("certificate path validated at the proven signing time %s", pathAt.Format(time.RFC3339))
		}
	}
	v.qualifySigner(sr.Signer, res, perr, bestSigningTime(poe, at))
	// The level is structural, but a failed signature reaches none: as
	// for PDF signatures (applyLevels), TOTAL-FAILED reports no level.
	if sr.Indication == report.TotalFailed {
		return
	}
	sr.Level = "B-B"
	for _, t := range sr.Timestamps {
		if t.Intact {
			sr.Level = "B-T"
		}
	}
}

// decodeProtected decodes the protected header.
func decodeProtected(b64 string) (*protectedHeader, map[string]json.RawMessage, error) {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return nil, nil, fmt.Errorf("the protected header is not base64url: %v", err)
	}
	var m map[string]json.RawMessage
	var ph protectedHeader
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("the protected header is not a JSON object: %v", err)
	}
	if err := json.Unmarshal(raw, &ph); err != nil {
		return nil, nil, fmt.Errorf("the protected header: %v", err)
	}
	return &ph, m, nil
}

// x5c parses the certificates of x5c (standard base64 DER).
func x5c(list []string) ([]*x509.Certificate, error) {
	if len(list) > maxJWSCerts {
		return nil, fmt.Errorf("x5c holds %d certificates, at most %d", len(list), maxJWSCerts)
	}
	var out []*x509.Certificate
	for i, s := range list {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d] is not base64", i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// signingCertificate is the x5c certificate x5t#S256 names, else the
// first when there is no x5t#S256.
func signingCertificate(certs []*x509.Certificate, x5t string) *x509.Certificate {
	if x5t == "" {
		if len(certs) > 0 {
			return certs[0]
		}
		return nil
	}
	want, err := base64.RawURLEncoding.DecodeString(x5t)
	if err != nil {
		return nil
	}
	for _, c := range certs {
		if d := sha256.Sum256(c.Raw); bytes.Equal(d[:], want) {
			return c
		}
	}
	return nil
}

// kidNames reports whether kid is the base64 DER IssuerSerial of c.
func kidNames(kid string, c *x509.Certificate) bool {
	der, err := base64.StdEncoding.DecodeString(kid)
	if err != nil {
		return false
	}
	var is struct {
		Issuer []asn1.RawValue
		Serial *big.Int
	}
	if rest, err := asn1.Unmarshal(der, &is); err != nil || len(rest) > 0 || is.Serial == nil {
		return false
	}
	return is.Serial.Cmp(c.SerialNumber) == 0 && len(is.Issuer) == 1 && bytes.Equal(is.Issuer[0].Bytes, c.RawIssuer)
}

// Bounds on the unsigned header: anyone may post a JWS signed with a key of
// their own, and every etsiU element read costs a warning in the report
// (an 8 MiB header of "1," made a 250 MB report) and every token a
// validation. Real signatures carry a handful.
const (
	// maxEtsiU is how many etsiU elements are read.
	maxEtsiU = 64
	// maxSigTimestamps is how many sigTst tokens are validated.
	maxSigTimestamps = 16
)

// sigTimestamps returns the DER tokens of the etsiU sigTst elements
// (each element base64url-encoded JSON, or JSON itself): at most
// maxSigTimestamps of them, from the first maxEtsiU elements.
func sigTimestamps(header json.RawMessage, st sigState) [][]byte {
	if len(header) == 0 {
		return nil
	}
	var h struct {
		EtsiU []json.RawMessage `json:"etsiU"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		st.warn("the unprotected header is not readable: %v", err)
		return nil
	}
	if len(h.EtsiU) > maxEtsiU {
		st.warn("etsiU has %d elements: only the first %d are read", len(h.EtsiU), maxEtsiU)
		h.EtsiU = h.EtsiU[:maxEtsiU]
	}
	var out [][]byte
	for i, e := range h.EtsiU {
		obj := []byte(e)
		var s string
		if json.Unmarshal(e, &s) == nil {
			b, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				st.warn("etsiU[%d] is not base64url", i)
				continue
			}
			obj = b
		}
		var el struct {
			SigTst *struct {
				TstTokens []struct {
					Val string `json:"val"`
				} `json:"tstTokens"`
			} `json:"sigTst"`
		}
		if err := json.Unmarshal(obj, &el); err != nil || el.SigTst == nil {
			st.warn("etsiU[%d] is not a signature time-stamp (sigTst): not used", i)
			continue
		}
		for _, t := range el.SigTst.TstTokens {
			if len(out) == maxSigTimestamps {
				st.warn("more than %d signature time-stamps: only the first %d are validated", maxSigTimestamps, maxSigTimestamps)
				return out
			}
			if der, err := base64.StdEncoding.DecodeString(t.Val); err == nil {
				out = append(out, der)
			} else {
				st.warn("a sigTst token is not base64")
			}
		}
	}
	return out
}

// rsToDER turns a JWS ECDSA signature (R||S) into ASN.1 DER.
func rsToDER(sig []byte) ([]byte, error) {
	if len(sig) == 0 || len(sig)%2 != 0 {
		return nil, errors.New("the ECDSA signature value is not R||S")
	}
	n := len(sig) / 2
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
