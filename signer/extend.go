package signer

import (
	"context"
	"fmt"
	"io"

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
	if v.TSA == nil {
		return fmt.Errorf("%w: extending needs a time-stamp authority", ErrOptions)
	}
	doc := &document{base: in, baseSize: inSize}
	rd, err := doc.open()
	if err != nil {
		return err
	}
	sigs, err := existingSignatures(rd)
	if err != nil {
		return err
	}
	if len(sigs) == 0 {
		return ErrNoSignature
	}
	if err := doc.addDSS(ctx, v, sigs, nil); err != nil {
		return err
	}
	if err := doc.addDocTimestamp(ctx, v); err != nil {
		return err
	}
	return doc.writeTo(out)
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
