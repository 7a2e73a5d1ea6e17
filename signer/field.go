package signer

import (
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// checkPermissions refuses a new signature when a certification signature
// forbids changes (DocMDP P=1), and a certification signature when the
// document is already signed.
func checkPermissions(rd *pdfdoc.Reader, certify bool) error {
	cat, err := rd.Catalog()
	if err != nil {
		return mapErr("reading the catalog", err)
	}
	if p, err := docMDPPermission(rd, cat); err != nil {
		return err
	} else if p == 1 {
		return ErrCertificationForbids
	}
	if certify {
		fields, err := signatureFields(rd, cat)
		if err != nil {
			return err
		}
		for _, f := range fields {
			if _, signed := f["V"]; signed {
				return ErrAlreadySigned
			}
		}
	}
	return nil
}

// docMDPPermission returns the /P of the certification signature, 0 when
// the document has none.
func docMDPPermission(rd *pdfdoc.Reader, cat pdfdoc.Dict) (int, error) {
	perms, err := rd.ResolveDict(cat["Perms"])
	if err != nil || perms == nil {
		return 0, mapErr("reading /Perms", err)
	}
	sig, err := rd.ResolveDict(perms["DocMDP"])
	if err != nil || sig == nil {
		return 0, mapErr("reading the certification signature", err)
	}
	refs, err := rd.Resolve(sig["Reference"])
	if err != nil {
		return 0, mapErr("reading /Reference", err)
	}
	arr, _ := refs.(pdfdoc.Array)
	for _, r := range arr {
		ref, err := rd.ResolveDict(r)
		if err != nil {
			return 0, mapErr("reading /Reference", err)
		}
		if ref == nil || ref.Name("TransformMethod") != "DocMDP" {
			continue
		}
		params, err := rd.ResolveDict(ref["TransformParams"])
		if err != nil {
			return 0, mapErr("reading /TransformParams", err)
		}
		if p, ok := params.Int("P"); ok && p >= 1 && p <= 3 {
			return int(p), nil
		}
		return 2, nil
	}
	return 2, nil
}

// maxFormFields bounds the field dictionaries signatureFields visits;
// large real forms hold a few thousand.
const maxFormFields = 1 << 15

// signatureFields returns the signature fields of the AcroForm (terminal
// fields with /FT /Sig, walking /Kids).
func signatureFields(rd *pdfdoc.Reader, cat pdfdoc.Dict) ([]pdfdoc.Dict, error) {
	form, err := rd.ResolveDict(cat["AcroForm"])
	if err != nil || form == nil {
		return nil, mapErr("reading /AcroForm", err)
	}
	fv, err := rd.Resolve(form["Fields"])
	if err != nil {
		return nil, mapErr("reading /Fields", err)
	}
	var out []pdfdoc.Dict
	seen := map[pdfdoc.Ref]bool{}
	visited := 0
	var walk func(arr pdfdoc.Array, depth int, inheritedFT pdfdoc.Name) error
	walk = func(arr pdfdoc.Array, depth int, inheritedFT pdfdoc.Name) error {
		if depth > 32 {
			return fmt.Errorf("%w: form field tree too deep", ErrMalformed)
		}
		for _, o := range arr {
			// Direct fields are not de-duplicated: arrays of two direct
			// fields sharing the next array make the walk exponential.
			if visited++; visited > maxFormFields {
				return fmt.Errorf("%w: form field tree of more than %d fields", ErrMalformed, maxFormFields)
			}
			if r, ok := o.(pdfdoc.Ref); ok {
				if seen[r] {
					continue
				}
				seen[r] = true
			}
			f, err := rd.ResolveDict(o)
			if err != nil {
				return mapErr("reading a form field", err)
			}
			if f == nil {
				continue
			}
			ft := f.Name("FT")
			if ft == "" {
				ft = inheritedFT
			}
			kids, _ := rd.Resolve(f["Kids"])
			if k, ok := kids.(pdfdoc.Array); ok && len(k) > 0 {
				if err := walk(k, depth+1, ft); err != nil {
					return err
				}
				continue
			}
			if ft == "Sig" {
				out = append(out, f)
			}
		}
		return nil
	}
	arr, _ := fv.(pdfdoc.Array)
	return out, walk(arr, 0, "")
}

// fieldSpec describes the signature field to add.
type fieldSpec struct {
	name    string
	page    int
	rect    pdfdoc.Array
	ap      pdfdoc.Object // appearance stream reference, or nil
	sigDict []byte        // the serialised signature dictionary up to the placeholders
	docMDP  bool          // register the signature as the certification signature
	extras  pdfdoc.Dict   // more catalog entries (DSS)
}

// addSignatureField writes, into u, the signature dictionary, the field
// (merged with its widget), the page with the widget in /Annots, the
// AcroForm, and the catalog when it changes. When spec.name names an
// existing, unsigned signature field, that field is filled instead. It
// returns the absolute offsets of the placeholders.
func addSignatureField(rd *pdfdoc.Reader, u *pdfdoc.Update, spec fieldSpec, placeholder int) (brAt, contentsAt int64, err error) {
	cat, err := rd.Catalog()
	if err != nil {
		return 0, 0, mapErr("reading the catalog", err)
	}
	var existingRef pdfdoc.Ref
	var existing pdfdoc.Dict
	if spec.name != "" {
		if existingRef, existing, err = findField(rd, cat, spec.name); err != nil {
			return 0, 0, err
		}
		if existing != nil {
			if existing.Name("FT") != "Sig" {
				return 0, 0, fmt.Errorf("%w: field %q is not a signature field", ErrOptions, spec.name)
			}
			if _, signed := existing["V"]; signed {
				return 0, 0, fmt.Errorf("%w: field %q is already signed", ErrOptions, spec.name)
			}
		}
	}
	var pageRef pdfdoc.Ref
	var page pdfdoc.Dict
	if existing == nil {
		pageRef, page, err = rd.Page(spec.page)
		if errors.Is(err, pdfdoc.ErrNoPage) {
			return 0, 0, fmt.Errorf("%w: %v", ErrOptions, err)
		}
		if err != nil {
			return 0, 0, mapErr("finding the page", err)
		}
	}

	sigRef := u.Alloc()
	n := sigDictSize(spec.sigDict, placeholder)
	u.Grow(n + 4096) // the dictionary and the rest of the update
	var br, ct int
	at := u.WriteObjectFunc(sigRef, n, func(b []byte) []byte {
		b, br, ct = appendSigDict(b, spec.sigDict, placeholder)
		return b
	})
	brAt = at + int64(br)
	contentsAt = at + int64(ct)

	if existing != nil {
		field := existing.Clone()
		field["V"] = sigRef
		if spec.rect != nil {
			field["Rect"], field["F"] = spec.rect, int64(4)
		}
		if spec.ap != nil {
			field["AP"] = pdfdoc.Dict{"N": spec.ap}
		}
		u.WriteObject(existingRef, field)
		return brAt, contentsAt, updateForm(rd, u, cat, spec, sigRef, nil)
	}

	name := spec.name
	if name == "" {
		if name, err = freeFieldName(rd, cat); err != nil {
			return 0, 0, err
		}
	}
	fieldRef := u.Alloc()
	field := pdfdoc.Dict{
		"Type": pdfdoc.Name("Annot"), "Subtype": pdfdoc.Name("Widget"),
		"FT": pdfdoc.Name("Sig"), "T": textString(name), "V": sigRef, "P": pageRef,
		"Rect": pdfdoc.Array{int64(0), int64(0), int64(0), int64(0)}, "F": int64(132),
	}
	if spec.rect != nil {
		field["Rect"], field["F"] = spec.rect, int64(4)
	}
	if spec.ap != nil {
		field["AP"] = pdfdoc.Dict{"N": spec.ap}
	}
	u.WriteObject(fieldRef, field)

	// The page's /Annots.
	page = page.Clone()
	switch a := page["Annots"].(type) {
	case pdfdoc.Ref:
		arr, err := rd.Resolve(a)
		if err != nil {
			return 0, 0, mapErr("reading /Annots", err)
		}
		old, _ := arr.(pdfdoc.Array)
		u.WriteObject(a, append(append(pdfdoc.Array{}, old...), fieldRef))
	case pdfdoc.Array:
		page["Annots"] = append(append(pdfdoc.Array{}, a...), fieldRef)
		u.WriteObject(pageRef, page)
	default:
		page["Annots"] = pdfdoc.Array{fieldRef}
		u.WriteObject(pageRef, page)
	}
	return brAt, contentsAt, updateForm(rd, u, cat, spec, sigRef, &fieldRef)
}

// updateForm sets /SigFlags 3 on the AcroForm (creating it when absent),
// appends newField to /Fields when set, and rewrites the catalog when it
// changes (direct AcroForm, /Perms for a certification, extra entries).
func updateForm(rd *pdfdoc.Reader, u *pdfdoc.Update, cat pdfdoc.Dict, spec fieldSpec, sigRef pdfdoc.Ref, newField *pdfdoc.Ref) error {
	newCat := cat.Clone()
	catChanged := false
	formRef, formIsRef := cat["AcroForm"].(pdfdoc.Ref)
	form, err := rd.ResolveDict(cat["AcroForm"])
	if err != nil {
		return mapErr("reading /AcroForm", err)
	}
	if form == nil {
		form, formIsRef = pdfdoc.Dict{}, false
	}
	form = form.Clone()
	form["SigFlags"] = int64(3)
	if newField != nil {
		switch f := form["Fields"].(type) {
		case pdfdoc.Ref:
			arr, err := rd.Resolve(f)
			if err != nil {
				return mapErr("reading /Fields", err)
			}
			old, _ := arr.(pdfdoc.Array)
			u.WriteObject(f, append(append(pdfdoc.Array{}, old...), *newField))
		case pdfdoc.Array:
			form["Fields"] = append(append(pdfdoc.Array{}, f...), *newField)
		default:
			form["Fields"] = pdfdoc.Array{*newField}
		}
	}
	if formIsRef {
		u.WriteObject(formRef, form)
	} else {
		newCat["AcroForm"] = form
		catChanged = true
	}
	if spec.docMDP {
		perms, _ := rd.ResolveDict(cat["Perms"])
		perms = perms.Clone()
		perms["DocMDP"] = sigRef
		newCat["Perms"] = perms
		catChanged = true
	}
	for k, v := range spec.extras {
		newCat[k] = v
		catChanged = true
	}
	if catChanged {
		u.WriteObject(rd.RootRef(), newCat)
	}
	return nil
}

// findField returns the top-level form field named name (nil when absent).
func findField(rd *pdfdoc.Reader, cat pdfdoc.Dict, name string) (pdfdoc.Ref, pdfdoc.Dict, error) {
	form, err := rd.ResolveDict(cat["AcroForm"])
	if err != nil || form == nil {
		return pdfdoc.Ref{}, nil, mapErr("reading /AcroForm", err)
	}
	fv, err := rd.Resolve(form["Fields"])
	if err != nil {
		return pdfdoc.Ref{}, nil, mapErr("reading /Fields", err)
	}
	arr, _ := fv.(pdfdoc.Array)
	for _, o := range arr {
		ref, ok := o.(pdfdoc.Ref)
		if !ok {
			continue
		}
		f, err := rd.ResolveDict(ref)
		if err != nil {
			return pdfdoc.Ref{}, nil, mapErr("reading a form field", err)
		}
		if t, ok := f["T"].(pdfdoc.String); ok && string(t) == name {
			return ref, f, nil
		}
	}
	return pdfdoc.Ref{}, nil, nil
}

// freeFieldName returns "SignatureN" for the first N not yet used as a
// top-level field name.
func freeFieldName(rd *pdfdoc.Reader, cat pdfdoc.Dict) (string, error) {
	used := map[string]bool{}
	if form, err := rd.ResolveDict(cat["AcroForm"]); err == nil && form != nil {
		fv, err := rd.Resolve(form["Fields"])
		if err != nil {
			return "", mapErr("reading /Fields", err)
		}
		arr, _ := fv.(pdfdoc.Array)
		for _, o := range arr {
			if f, err := rd.ResolveDict(o); err == nil && f != nil {
				if t, ok := f["T"].(pdfdoc.String); ok {
					used[string(t)] = true
				}
			}
		}
	}
	for i := 1; ; i++ {
		n := "Signature" + itoa(i)
		if !used[n] {
			return n, nil
		}
	}
}

// addSignatureRevision builds the incremental update of an approval or
// certification signature with placeholders for /ByteRange and /Contents.
func addSignatureRevision(rd *pdfdoc.Reader, opts *Options, ap *drawing, placeholder int) (*revision, error) {
	u := pdfdoc.NewUpdate(rd)
	d := pdfdoc.Dict{
		"Type":      pdfdoc.Name("Sig"),
		"Filter":    pdfdoc.Name("Adobe.PPKLite"),
		"SubFilter": pdfdoc.Name("ETSI.CAdES.detached"),
		"M":         pdfdoc.String(pdfDate(opts.Time)),
	}
	for k, v := range map[pdfdoc.Name]string{"Reason": opts.Reason, "Location": opts.Location, "Name": opts.Name, "ContactInfo": opts.ContactInfo} {
		if v != "" {
			d[k] = textString(v)
		}
	}
	if opts.DocMDP != 0 {
		d["Reference"] = pdfdoc.Array{pdfdoc.Dict{
			"Type":            pdfdoc.Name("SigRef"),
			"TransformMethod": pdfdoc.Name("DocMDP"),
			"TransformParams": pdfdoc.Dict{"Type": pdfdoc.Name("TransformParams"), "P": int64(opts.DocMDP), "V": pdfdoc.Name("1.2")},
		}}
	}
	spec := fieldSpec{name: opts.FieldName, page: opts.Page, docMDP: opts.DocMDP != 0, sigDict: openDict(d)}
	if ap != nil {
		xo, rect, err := writeAppearance(u, ap, opts.Appearance.Rect)
		if err != nil {
			return nil, err
		}
		spec.ap, spec.rect = xo, rect
	}
	brAt, contentsAt, err := addSignatureField(rd, u, spec, placeholder)
	if err != nil {
		return nil, err
	}
	return finishRevision(rd, u, brAt, contentsAt, placeholder)
}

// openDict serialises d without its closing ">>".
func openDict(d pdfdoc.Dict) []byte {
	b := pdfdoc.AppendObject(nil, d)
	return b[:len(b)-2]
}

func finishRevision(rd *pdfdoc.Reader, u *pdfdoc.Update, brAt, contentsAt int64, placeholder int) (*revision, error) {
	data, err := u.Finish()
	if err != nil {
		return nil, fmt.Errorf("signer: writing the update: %w", err)
	}
	base := rd.Size()
	return &revision{data: data, byteRange: int(brAt - base), contents: int(contentsAt - base), hexLen: 2 * placeholder}, nil
}
