package signing

// Document signing in two steps, the way the CSC API binds signature
// activation data to what is signed: the citizen's application sends the
// PDF to POST /api/v1/sign/prepare and gets the hash the key will sign
// (the DTBS: the digest of the CMS signed attributes, which hold the
// document's ByteRange digest); it obtains a SAD for exactly that hash
// from /csc/v2/credentials/authorize (PIN, or any other activation the
// CSC endpoint accepts), and sends the same PDF with the SAD to POST
// /api/v1/sign/complete, which rebuilds the identical signature layout
// (same signing time, same placeholder), checks that the SAD covers the
// DTBS of this very document, consumes it and signs. The server keeps no
// document between the two calls.

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/signer"
)

// Bounds of the placeholder a complete call may name.
const (
	minTwoStepPlaceholder = 1024
	maxTwoStepPlaceholder = 256 << 10
)

// SignPrepareResponse answers POST /api/v1/sign/prepare.
type SignPrepareResponse struct {
	// CredentialID repeats the request.
	CredentialID string `json:"credentialID"`
	// Level repeats the request.
	Level string `json:"level"`
	// Hash is the DTBS, base64: what credentials/authorize must authorise.
	Hash string `json:"hash"`
	// HashAlgorithmOID names Hash's algorithm for credentials/authorize.
	HashAlgorithmOID string `json:"hashAlgorithmOID"`
	// DocumentDigest is the hex ByteRange digest of the document to be.
	DocumentDigest string `json:"documentDigest"`
	// SigningTime (RFC 3339) goes back, unchanged, to complete.
	SigningTime string `json:"signingTime"`
	// Placeholder (the signature's size in bytes) goes back, unchanged,
	// to complete.
	Placeholder int `json:"placeholder"`
}

// errPrepared stops signer.Sign once the DTBS is known: prepare never
// uses the key.
var errPrepared = errors.New("prepared, not signed")

// twoStepLayout fixes what makes the document's digest reproducible.
func twoStepLayout(at time.Time, placeholder int) func(*signer.Options) {
	return func(o *signer.Options) {
		o.Time, o.Placeholder = at, placeholder
	}
}

// signPrepare serves POST /api/v1/sign/prepare?level=L&credential=ID: the
// body is the PDF; the answer (JSON) the hash to authorise and the layout
// to complete with. Nothing is signed; the preparation is audited.
func (s *Service) signPrepare(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := signRecord{action: ActionPrepare, actor: CitizenOf(r), level: "unknown"}
	q := r.URL.Query()
	if err := RefuseCredentialScope(r); err != nil {
		rec.credential = q.Get("credential")
		s.fail(w, r, rec, "prepare", start, err)
		return
	}
	level, cred, ok := s.callerCredential(w, r, q, &rec, "prepare", OwnerCitizen, start)
	if !ok {
		return
	}
	credID := rec.credential
	doc, err := documentOptions(q)
	if err != nil {
		s.fail(w, r, rec, "prepare", start, err)
		return
	}
	in, cleanup, err := s.readPDF(w, r, doc)
	defer cleanup()
	if err != nil {
		s.fail(w, r, rec, "prepare", start, err)
		return
	}
	rec.size = in.size
	at := s.now().UTC().Truncate(time.Second) // /M holds seconds
	placeholder := signer.MaxPlaceholder(cred.chain, level)
	var dtbs, digest []byte
	_, err = s.signPDF(r.Context(), rec, cred, level, in, doc, nil, func(_ context.Context, d, x []byte) error {
		digest, dtbs = append([]byte(nil), d...), append([]byte(nil), x...)
		return errPrepared
	}, twoStepLayout(at, placeholder))
	if !errors.Is(err, errPrepared) {
		if err == nil {
			err = errors.New("the document was signed while preparing")
		}
		s.fail(w, r, rec, "prepare", start, err)
		return
	}
	rec.documentDigest, rec.hash = digest, signerHash(cred)
	if err := s.auditSign(r.Context(), rec, audit.OutcomeSuccess, ""); err != nil {
		s.fail(w, r, rec, "prepare", start, auditFailed(err))
		return
	}
	s.Observe("prepare", rec.level, audit.OutcomeSuccess, time.Since(start))
	WriteJSON(w, http.StatusOK, SignPrepareResponse{
		CredentialID: credID, Level: level.String(), Hash: base64.StdEncoding.EncodeToString(dtbs),
		HashAlgorithmOID: HashOID(rec.hash), DocumentDigest: hex.EncodeToString(digest),
		SigningTime: at.Format(time.RFC3339), Placeholder: placeholder,
	})
}

// signComplete serves POST /api/v1/sign/complete?level=L&credential=ID&
// signingTime=T&placeholder=N with the same PDF as body and the SAD in
// X-Thiqa-SAD: the document is laid out as prepare did, and the key signs
// only when the SAD (for this credential, unexpired, unused) authorised
// this document's DTBS. The SAD is consumed by the attempt. With an access
// token of scope credential the SAD is the token's (X-Thiqa-SAD may be left
// out), and a document whose DTBS the token does not name is refused
// before it is spent.
func (s *Service) signComplete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sad := r.Header.Get(SADHeader)
	r.Header.Del(SADHeader)
	bound, authorised, delegated := CredentialGrant(r)
	if delegated && sad == "" {
		sad = bound
	}
	actor := CitizenOf(r)
	var tune func(*signer.Options)
	var layoutErr error
	at, err := time.Parse(time.RFC3339, q.Get("signingTime"))
	placeholder, perr := strconv.Atoi(q.Get("placeholder"))
	now := s.now()
	switch {
	case err != nil:
		layoutErr = Refuse(ErrBadRequest, "signingTime must be the RFC 3339 time prepare returned")
	case at.Before(now.Add(-s.cfg.SADLifetime-time.Minute)) || at.After(now.Add(time.Minute)):
		layoutErr = Refuse(ErrBadRequest, "signingTime is not within the last %s: prepare the document again", s.cfg.SADLifetime)
	case perr != nil || placeholder < minTwoStepPlaceholder || placeholder > maxTwoStepPlaceholder:
		layoutErr = Refuse(ErrBadRequest, "placeholder must be the size prepare returned")
	case sad == "":
		layoutErr = Refuse(ErrActivationRequired, "the SAD from credentials/authorize is required in the %s header", SADHeader)
	case delegated && sad != bound:
		layoutErr = Refuse(ErrOutOfScope, "an access token with scope credential signs with its own authorisation, not another SAD")
	default:
		tune = twoStepLayout(at.UTC(), placeholder)
	}
	s.signDocument(w, r, ActionSign, "sign", OwnerCitizen, actor, func(ctx context.Context, credID string, digest, dtbs []byte) error {
		if layoutErr != nil {
			return layoutErr
		}
		if delegated {
			if err := CheckSAD(authorised, HashOID(dtbsHash(dtbs)), [][]byte{dtbs}); err != nil {
				return err
			}
		}
		got, err := s.ConsumeSAD(ctx, sad, credID)
		if err != nil {
			return err
		}
		// Any mismatch is ErrSADMismatch: another document, signingTime
		// or placeholder than the one prepared.
		return CheckSAD(got, HashOID(dtbsHash(dtbs)), [][]byte{dtbs})
	}, tune)
}
