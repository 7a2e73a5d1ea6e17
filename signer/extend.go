package signer

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/signer/cades"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// addDocTimestamp appends an incremental update holding a document
// time-stamp (/DocTimeStamp, ETSI.RFC3161) over the whole document.
func (d *document) addDocTimestamp(ctx context.Context, v ValidationOptions) error {
	if v.TSA == nil {
		return fmt.Errorf("%w: a document time-stamp needs a time-stamp authority", ErrOptions)
	}
	rd, err := d.open()
	if err != nil {
		return err
	}
	h := v.tsHash()
	build := func(placeholder int) (*revision, error) {
		u := pdfdoc.NewUpdate(rd)
		spec := fieldSpec{page: 0, sigDict: openDict(pdfdoc.Dict{
			"Type":      pdfdoc.Name("DocTimeStamp"),
			"Filter":    pdfdoc.Name("Adobe.PPKLite"),
			"SubFilter": pdfdoc.Name("ETSI.RFC3161"),
		})}
		brAt, contentsAt, err := addSignatureField(rd, u, spec, placeholder)
		if err != nil {
			return nil, err
		}
		return finishRevision(rd, u, brAt, contentsAt, placeholder)
	}
	fill := func(digest []byte) ([]byte, error) {
		tctx, cancel := v.callContext(ctx)
		tok, err := v.TSA.Timestamp(tctx, digest, h)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: document time-stamp: %w", ErrTimestamp, err)
		}
		return tok, nil
	}
	_, _, err = d.appendSigned(12288, true, h, build, fill)
	return err
}

// Extend brings a signed PDF (signed here or elsewhere) to B-LTA: it adds
// the validation data of every signature and document time-stamp to the
// DSS and then a new document time-stamp, each as an incremental update,
// and writes the result to out. Nothing is written on failure.
func Extend(ctx context.Context, in io.ReaderAt, inSize int64, out io.Writer, v ValidationOptions) error {
	_, err := ExtendTo(ctx, in, inSize, out, ExtendOptions{Level: LevelBLTA, Validation: v})
	return err
}

// ExtendOptions describe an extension.
type ExtendOptions struct {
	// Level is B-LT (the DSS alone) or B-LTA (then a document time-stamp
	// over it); default B-LTA. Extending a B-LTA document again adds the
	// validation data of its last time-stamp and a new one: the archive
	// renewal of EN 319 142-1 §5.5.
	Level Level
	// Validation supplies the revocation data and the time-stamp. Data the
	// document's DSS already holds is used first; what cannot be had at
	// all is listed in ExtendResult.Missing when AllowMissingRevocation is
	// set, an ErrRevocation error otherwise.
	Validation ValidationOptions
	// BeforeWrite, when set, is called once every step succeeded and
	// before the first byte goes to out, with the result (its Size set).
	BeforeWrite func(res *ExtendResult) error
}

// ExtendResult describes an extension that was made.
type ExtendResult struct {
	// Level is the level the document was extended to.
	Level Level
	// Signatures counts the signatures and document time-stamps covered.
	Signatures int
	// Missing names the certificates whose revocation data could not be
	// had (with AllowMissingRevocation).
	Missing []string
	// Size is the size of the extended PDF.
	Size int64
}

// ExtendTo adds to the signed PDF in the validation data of every
// signature and document time-stamp it holds (one DSS update) and, for
// B-LTA, a document time-stamp over the result; it writes the extended PDF
// to out, and nothing on failure. A PDF without signatures is
// ErrNoSignature.
func ExtendTo(ctx context.Context, in io.ReaderAt, inSize int64, out io.Writer, o ExtendOptions) (*ExtendResult, error) {
	if o.Level == 0 {
		o.Level = LevelBLTA
	}
	if o.Level != LevelBLT && o.Level != LevelBLTA {
		return nil, fmt.Errorf("%w: a document is extended to B-LT or B-LTA, not %v", ErrOptions, o.Level)
	}
	v := o.Validation
	if o.Level == LevelBLTA && v.TSA == nil {
		return nil, fmt.Errorf("%w: extending to B-LTA needs a time-stamp authority", ErrOptions)
	}
	doc := &document{base: in, baseSize: inSize}
	rd, err := doc.open()
	if err != nil {
		return nil, err
	}
	sigs, err := existingSignatures(rd)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, ErrNoSignature
	}
	res := &ExtendResult{Level: o.Level, Signatures: len(sigs)}
	// A signature without a time-stamp (B-B) gets its T level first: a
	// document time-stamp, whose own validation data then goes into the
	// DSS with the signature's, before the archive time-stamp (the order
	// in which EN 319 142-1 builds B-LT and B-LTA on B-B).
	if needs, err := needsTimestamp(rd); err != nil {
		return nil, err
	} else if needs {
		if v.TSA == nil {
			return nil, fmt.Errorf("%w: a signature without a time-stamp needs one before B-LT: a time-stamp authority is required", ErrOptions)
		}
		if err := doc.addDocTimestamp(ctx, v); err != nil {
			return nil, err
		}
		if rd, err = doc.open(); err != nil {
			return nil, err
		}
		if sigs, err = existingSignatures(rd); err != nil {
			return nil, err
		}
	}
	ocsps, crls, err := existingRevocation(rd)
	if err != nil {
		return nil, err
	}
	v.Revocation = docRevocation{ocsps: ocsps, crls: crls, next: v.Revocation}
	if res.Missing, err = doc.addDSSMissing(ctx, v, sigs); err != nil {
		return nil, err
	}
	if o.Level == LevelBLTA {
		if err := doc.addDocTimestamp(ctx, v); err != nil {
			return nil, err
		}
	}
	res.Size = doc.size()
	if o.BeforeWrite != nil {
		if err := o.BeforeWrite(res); err != nil {
			return nil, err
		}
	}
	return res, doc.writeTo(out)
}

// existingRevocation returns the OCSP responses and CRLs of the
// document's DSS.
func existingRevocation(rd *pdfdoc.Reader) (ocsps, crls [][]byte, err error) {
	cat, err := rd.Catalog()
	if err != nil {
		return nil, nil, mapErr("reading the catalog", err)
	}
	dss, err := rd.ResolveDict(cat["DSS"])
	if err != nil || dss == nil {
		return nil, nil, mapErr("reading the existing /DSS", err)
	}
	read := func(key pdfdoc.Name) [][]byte {
		arr, _ := rd.Resolve(dss[key])
		a, _ := arr.(pdfdoc.Array)
		var out [][]byte
		for _, e := range a {
			if st, err := rd.Resolve(e); err == nil {
				if s, ok := st.(*pdfdoc.Stream); ok {
					if b, err := rd.StreamData(s, 16<<20); err == nil {
						out = append(out, b)
					}
				}
			}
		}
		return out
	}
	return read("OCSPs"), read("CRLs"), nil
}

// errNotInDocument sends gather from the OCSP response it asked for to
// the CRL the document holds.
var errNotInDocument = errors.New("no OCSP response in the document; its CRL answers")

// docRevocation answers from the document's own DSS first (an OCSP
// response about the certificate, a CRL its issuer signed), then asks next.
type docRevocation struct {
	ocsps, crls [][]byte
	next        RevocationSource
}

// OCSP implements RevocationSource.
func (d docRevocation) OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	for _, der := range d.ocsps {
		if r, err := ocsp.ParseResponseForCert(der, cert, issuer); err == nil && r.Status == ocsp.Good {
			return der, nil
		}
	}
	if d.crlOf(issuer) != nil {
		return nil, errNotInDocument
	}
	if d.next == nil {
		return nil, errors.New("no revocation source")
	}
	return d.next.OCSP(ctx, cert, issuer)
}

// CRL implements RevocationSource.
func (d docRevocation) CRL(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
	if der := d.crlOf(issuer); der != nil {
		return der, nil
	}
	if d.next == nil {
		return nil, errors.New("no revocation source")
	}
	return d.next.CRL(ctx, issuer)
}

// Issuer implements IssuerFetcher when next does.
func (d docRevocation) Issuer(ctx context.Context, cert *x509.Certificate) (*x509.Certificate, error) {
	if f, ok := d.next.(IssuerFetcher); ok {
		return f.Issuer(ctx, cert)
	}
	return nil, errors.New("no issuer fetcher")
}

// crlOf returns a CRL of the document signed by issuer.
func (d docRevocation) crlOf(issuer *x509.Certificate) []byte {
	for _, der := range d.crls {
		rl, err := x509.ParseRevocationList(der)
		if err == nil && bytes.Equal(rl.RawIssuer, issuer.RawSubject) && rl.CheckSignatureFrom(issuer) == nil {
			return der
		}
	}
	return nil
}

// needsTimestamp reports a document without any document time-stamp
// holding a signature without a signature time-stamp.
func needsTimestamp(rd *pdfdoc.Reader) (bool, error) {
	cat, err := rd.Catalog()
	if err != nil {
		return false, mapErr("reading the catalog", err)
	}
	fields, err := signatureFields(rd, cat)
	if err != nil {
		return false, err
	}
	untimed := false
	for _, f := range fields {
		sig, err := rd.ResolveDict(f["V"])
		if err != nil || sig == nil {
			continue
		}
		if sig.Name("Type") == "DocTimeStamp" || sig.Name("SubFilter") == "ETSI.RFC3161" {
			return false, nil
		}
		c, err := rd.Resolve(sig["Contents"])
		if err != nil {
			continue
		}
		var der []byte
		switch b := c.(type) {
		case pdfdoc.String:
			der = b
		case pdfdoc.HexString:
			der = b
		}
		if p, err := cades.Parse(der); err == nil && len(p.Timestamps) == 0 {
			untimed = true
		}
	}
	return untimed, nil
}

// existingSignatures returns the /Contents of every signed signature field.
func existingSignatures(rd *pdfdoc.Reader) ([][]byte, error) {
	cat, err := rd.Catalog()
	if err != nil {
		return nil, mapErr("reading the catalog", err)
	}
	fields, err := signatureFields(rd, cat)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, f := range fields {
		sig, err := rd.ResolveDict(f["V"])
		if err != nil {
			return nil, mapErr("reading a signature dictionary", err)
		}
		if sig == nil {
			continue
		}
		c, err := rd.Resolve(sig["Contents"])
		if err != nil {
			return nil, mapErr("reading /Contents", err)
		}
		switch b := c.(type) {
		case pdfdoc.String:
			out = append(out, []byte(b))
		case pdfdoc.HexString:
			out = append(out, []byte(b))
		}
	}
	return out, nil
}
