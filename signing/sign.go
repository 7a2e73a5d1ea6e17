package signing

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signer/cades"
)

// signRecord is the audit record of one seal or signature.
type signRecord struct {
	action, actor, credential, level string
	documentDigest                   []byte
	hash                             crypto.Hash
	size                             int64
	name                             string
	warnings                         []string
}

func (s *Service) auditSign(ctx context.Context, r signRecord, outcome, reason string) error {
	d := signDetails{Credential: r.credential, Level: r.level, Name: r.name, Reason: reason}
	if outcome != audit.OutcomeSuccess {
		d.Caller = auth.CallerOf(ctx) // a refusal names the caller: method, subject, roles
	}
	if len(r.documentDigest) > 0 {
		d.DocumentDigest = hex.EncodeToString(r.documentDigest)
		d.Hash = r.hash.String()
	}
	if r.size > 0 {
		d.Size = r.size
	}
	d.Warnings = r.warnings
	_, err := s.audit.Append(ctx, audit.Entry{Actor: r.actor, Action: r.action, Object: r.credential, Outcome: outcome, Details: d})
	if err != nil {
		s.logger.ErrorContext(ctx, "audit append failed", "action", r.action, "err", err)
	}
	return err
}

// signDetails are the details of a signing record. The fields are in
// alphabetical order and the optional ones omitted when empty, so the JSON
// is what the map of the same entries gives, without building and sorting
// a map per signature.
type signDetails struct {
	Caller         *auth.Caller `json:"caller,omitempty"`
	Credential     string       `json:"credential"`
	DocumentDigest string       `json:"documentDigest,omitempty"`
	Hash           string       `json:"hash,omitempty"`
	Level          string       `json:"level"`
	Name           string       `json:"name,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Size           int64        `json:"size,omitempty"`
	Warnings       []string     `json:"warnings,omitempty"`
}

// pdfInput is one PDF to sign, on disk or in memory.
type pdfInput struct {
	r    io.ReaderAt
	size int64
}

// signPDF signs in with cred at level and writes the result to the writer
// out returns. The audit record of the success is written (and must
// succeed) after every step succeeded and before out is called, so before
// the first byte of the answer; out gets the document digest and the size
// of the signed PDF. authorize, when set, is called with the document
// digest and the DTBS before the key is used (sole control).
//
// tune, when set, adjusts the options last (the fixed time and placeholder
// of a two-step signature).
func (s *Service) signPDF(ctx context.Context, rec signRecord, cred *Credential, level signer.Level, in pdfInput, doc *DocumentOptions, out func(documentDigest []byte, size int64) (io.Writer, error),
	authorize func(ctx context.Context, documentDigest, dtbs []byte) error, tune func(*signer.Options)) (*signer.Result, error) {
	dst := &deferredWriter{}
	rec.hash = signerHash(cred) // named in the record
	opts := signer.Options{
		Level: level, Signer: cred.key, Chain: cred.chain, Hash: rec.hash, Validation: s.validation,
		BeforeSign: func(ctx context.Context, documentDigest, dtbs []byte) error {
			rec.documentDigest = append([]byte(nil), documentDigest...)
			if authorize != nil {
				return authorize(ctx, documentDigest, dtbs)
			}
			return nil
		},
		BeforeWrite: func(size int64) error {
			if err := s.auditSign(ctx, rec, audit.OutcomeSuccess, ""); err != nil {
				return auditFailed(err)
			}
			w, err := out(rec.documentDigest, size)
			dst.w = w
			return err
		},
	}
	if rec.action == ActionSeal {
		opts.Reason = "e-seal"
	}
	if tune != nil {
		tune(&opts)
	}
	if doc != nil {
		if opts.Time.IsZero() {
			opts.Time = s.now() // what /M and the appearance both show
		}
		if err := s.applyDocumentOptions(doc, cred, rec.action == ActionSeal, &opts); err != nil {
			return nil, err
		}
		if opts.Appearance != nil {
			opts.OnWarnings = func(ws []string) {
				rec.warnings, doc.warnings = ws, ws
				s.logger.WarnContext(ctx, "the visible signature cannot show everything as asked", "credential", rec.credential, "warnings", ws)
			}
		}
	}
	return signer.Sign(ctx, in.r, in.size, dst, opts)
}

// signerHash is the digest algorithm of the credential's signatures (what
// signPDF signs with).
func signerHash(c *Credential) crypto.Hash {
	return cades.DefaultHash(c.key.Public())
}

// deferredWriter writes to w, which BeforeWrite sets once the signed
// document is complete and audited.
type deferredWriter struct{ w io.Writer }

func (d *deferredWriter) Write(b []byte) (int, error) {
	if d.w == nil {
		return 0, ErrAudit
	}
	return d.w.Write(b)
}

// OperatorSeal seals a document with the organisation-seal credential
// credID of any agency, outside HTTP: the operator's `thiqa seal`, who
// holds the data folder and the token. open gives the document and its
// size; the sealed PDF goes to out only once it is complete and its audit
// record written. The record names operator acting for the agency; a
// refusal or failure is recorded too. A credential that is not an agency's
// is refused with an error wrapping ErrCredentialRefused; one whose
// certificate is revoked or expired with ErrCertificateRevoked or
// ErrCertificateNotValid.
func (s *Service) OperatorSeal(ctx context.Context, operator, credID string, level signer.Level,
	open func() (io.ReaderAt, int64, error), out io.Writer) (*signer.Result, error) {
	return s.OperatorSealWith(ctx, operator, credID, level, nil, open, out)
}

// OperatorSealWith is OperatorSeal with the document options doc (reason,
// location, contact, certification, visible appearance); nil is none.
func (s *Service) OperatorSealWith(ctx context.Context, operator, credID string, level signer.Level, doc *DocumentOptions,
	open func() (io.ReaderAt, int64, error), out io.Writer) (*signer.Result, error) {
	rec := signRecord{action: ActionSeal, actor: operator, credential: credID, level: level.String()}
	if doc != nil {
		if err := doc.check(); err != nil {
			_, msg, outcome := Classify(err)
			if aerr := s.auditSign(ctx, rec, outcome, msg); aerr != nil {
				return nil, refusalUnrecorded(err, aerr)
			}
			return nil, err
		}
	}
	cred, err := s.load(ctx, credID, "", "")
	if err == nil && cred.rec.OwnerKind != OwnerAgency {
		err = fmt.Errorf("%w: %s is not an organisation-seal credential", ErrCredentialRefused, credID)
	}
	if err == nil {
		rec.actor += " for " + cred.rec.OwnerID
		// A revoked or expired certificate seals nothing, here as over
		// the API (Credential: it also follows a renewal another
		// instance made).
		cred, err = s.Credential(ctx, credID, OwnerAgency, cred.rec.OwnerID)
	}
	var in pdfInput
	if err == nil {
		in.r, in.size, err = open()
	}
	if err != nil {
		_, msg, outcome := Classify(err)
		if aerr := s.auditSign(ctx, rec, outcome, msg); aerr != nil {
			return nil, refusalUnrecorded(err, aerr)
		}
		return nil, err
	}
	rec.size = in.size
	res, err := s.signPDF(ctx, rec, cred, level, in, doc, func([]byte, int64) (io.Writer, error) { return out, nil }, nil, nil)
	if err != nil {
		_, msg, outcome := Classify(err)
		if !errors.Is(err, ErrAudit) {
			if aerr := s.auditSign(ctx, rec, outcome, msg); aerr != nil {
				return nil, refusalUnrecorded(err, aerr)
			}
		}
		return nil, err
	}
	return res, nil
}
