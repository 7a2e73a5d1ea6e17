package verify

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// change is one classified difference after a signed revision.
type change struct {
	msg   string
	class changeClass
	field string // fully qualified name of the form field concerned, if any
}

// fieldLock is a FieldMDP restriction (ISO 32000-1 §12.8.2.4).
type fieldLock struct {
	action string // All, Include, Exclude
	fields map[string]bool
}

func (l *fieldLock) locks(name string) bool {
	switch l.action {
	case "All":
		return true
	case "Include":
		return l.fields[name]
	case "Exclude":
		return !l.fields[name]
	}
	return false
}

// fieldLocks reads the FieldMDP references of the signature dictionary and
// the /Lock of its field.
func fieldLocks(f *pdf.File, s *pdf.SigField, rev int) []*fieldLock {
	var out []*fieldLock
	add := func(params pdf.Dict) {
		if params != nil {
			out = append(out, newFieldLock(f, params, rev))
		}
	}
	refs, _ := f.ResolveArray(s.Value["Reference"], rev)
	for _, r := range refs {
		if rd := f.Dict(r, rev); rd != nil && rd.Name("TransformMethod") == "FieldMDP" {
			add(f.Dict(rd["TransformParams"], rev))
		}
	}
	if s.Field.Num != 0 {
		if fd := f.Dict(s.Field, rev); fd != nil {
			add(f.Dict(fd["Lock"], rev))
		}
	}
	return out
}

// newFieldLock reads a FieldMDP transform's parameters (or a /Lock). The
// names it lists are cut as fieldName cuts the names of the changed
// fields, so that a locked field whose name is longer than
// maxFieldNameBytes is still found locked (its cut name matched no full
// name, and a change to it passed as an allowed form fill).
func newFieldLock(f *pdf.File, params pdf.Dict, rev int) *fieldLock {
	l := &fieldLock{action: string(params.Name("Action")), fields: map[string]bool{}}
	arr, _ := f.ResolveArray(params["Fields"], rev)
	for _, x := range arr {
		if str, ok := x.(pdf.String); ok {
			l.fields[cutFieldName(pdf.TextString(str.Bytes))] = true
		}
	}
	return l
}

// cutFieldName cuts a fully qualified field name as fieldName does when
// it builds it from the field's dictionaries: each partial name (from the
// last) at most maxFieldNameBytes, no more partial names once those taken
// reach maxFieldNameBytes or 32, and the last maxFieldNameBytes of the
// whole, all between characters. A name within the bound is unchanged.
func cutFieldName(name string) string {
	if len(name) <= maxFieldNameBytes {
		return name
	}
	var parts []string
	size, rest := 0, name
	for len(parts) < 32 && size < maxFieldNameBytes {
		i := strings.LastIndexByte(rest, '.') // -1: rest is the first part
		part := pdf.TextPrefix(rest[i+1:], maxFieldNameBytes)
		size += len(part) + 1
		parts = append([]string{part}, parts...)
		if i < 0 {
			break
		}
		rest = rest[:i]
	}
	return pdf.TextSuffix(strings.Join(parts, "."), maxFieldNameBytes)
}

// maxFieldNameBytes bounds the name fieldName builds: it runs for every
// changed form field, and a chain of parents with long partial names would
// otherwise cost their total length for each of up to 400,000 objects.
const maxFieldNameBytes = 1 << 10

// fieldName builds the fully qualified name of a field dictionary (its
// last maxFieldNameBytes bytes when longer, cut between characters).
func fieldName(f *pdf.File, d pdf.Dict, rev int) string {
	var parts []string
	size := 0
	for depth := 0; d != nil && depth < 32 && size < maxFieldNameBytes; depth++ {
		if t, ok := d["T"].(pdf.String); ok {
			// Cut at a character: a cut through one showed U+FFFD.
			part := pdf.TextStringPrefix(t.Bytes, maxFieldNameBytes)
			size += len(part) + 1
			parts = append([]string{part}, parts...)
		}
		d = f.Dict(d["Parent"], rev)
	}
	name := strings.Join(parts, ".")
	return pdf.TextSuffix(name, maxFieldNameBytes)
}

type changeClass int

const (
	chAllowed  changeClass = iota // validation data, document timestamps, harmless re-saves
	chSigning                     // a new signature or signature field
	chFormFill                    // form field values and appearances
	chAnnot                       // annotations
	chMetadata                    // document information and XMP metadata
	chFatal                       // anything else: the signed content changed
)

// maxDiffObjects bounds the comparison work per signature.
const maxDiffObjects = 100000

// maxDiffObjectsPerDocument bounds it over all the signatures of a
// document: each compares every object of the revisions after it, so 256
// signatures of one revision followed by 100,000 objects cost 256 times
// the work (16 s of CPU for a 5 MB upload).
const maxDiffObjectsPerDocument = 4 * maxDiffObjects

// maxModifications bounds the distinct changes listed per signature:
// messages name objects and annotation subtypes, so a large update would
// otherwise put the whole file into every signature's report entry.
const maxModifications = 64

// checkModifications classifies the incremental updates after revision rev
// and fails the signature when one is not permitted (EN 319 142-1, ISO
// 32000-2 §12.8.2: DocMDP and FieldMDP).
func (v *Verifier) checkModifications(dc *docContext, s *pdf.SigField, rev int, st sigState) {
	f := dc.f
	if rev < 0 || rev >= len(f.Sections)-1 {
		return
	}
	perm := docMDP(f, rev)
	locks := fieldLocks(f, s, rev)
	var changes []change
	seen := 0
	tooMany := change{msg: "too many changed objects to analyse", class: chFatal}
sections:
	for k := rev + 1; k < len(f.Sections); k++ {
		if dc.diffSeen >= maxDiffObjectsPerDocument {
			changes = append(changes, tooMany)
			break
		}
		nums := f.Sections[k].Objects()
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		for _, n := range nums {
			seen++
			dc.diffSeen++
			if seen > maxDiffObjects || dc.diffSeen > maxDiffObjectsPerDocument {
				changes = append(changes, tooMany)
				break sections
			}
			if c, ok := classifyObject(f, s, rev, k, n); ok {
				changes = append(changes, c)
			}
		}
	}
	// A new catalog object (the trailer's /Root redirected) is compared with
	// the signed catalog as if it were the same object.
	if oldRoot, ok := f.RootRef(rev); ok {
		for k := rev + 1; k < len(f.Sections); k++ {
			if nr, ok := f.RootRef(k); ok && nr.Num != oldRoot.Num {
				oldD := f.Dict(oldRoot, rev)
				newD := f.Dict(nr, k)
				if oldD == nil || newD == nil {
					changes = append(changes, change{msg: "the document catalog was replaced", class: chFatal})
					continue
				}
				changes = append(changes, catalogChange(f, oldD, newD, rev, k))
			}
		}
	}
	fatal := false
	msgs := map[string]bool{}
	more := 0
	for _, c := range changes {
		allowedByMDP := true
		switch c.class {
		case chFatal:
			allowedByMDP = false
		case chSigning, chFormFill:
			allowedByMDP = perm != 1
		case chAnnot:
			allowedByMDP = perm == 0 || perm == 3
		case chMetadata:
			allowedByMDP = true
		}
		if c.class == chAllowed {
			continue
		}
		for _, l := range locks {
			if c.class == chFormFill && c.field != "" && l.locks(c.field) {
				allowedByMDP = false
				c.msg += fmt.Sprintf(" (field %q is locked by this signature)", c.field)
			}
		}
		if !allowedByMDP {
			fatal = true
			if perm > 0 && c.class != chFatal {
				c.msg += fmt.Sprintf(" (not permitted by the certification signature, P=%d)", perm)
			}
		}
		if !msgs[c.msg] {
			if len(msgs) == maxModifications {
				more++
				continue
			}
			msgs[c.msg] = true
			st.sr.Modifications = append(st.sr.Modifications, c.msg)
		}
	}
	if more > 0 {
		st.sr.Modifications = append(st.sr.Modifications, fmt.Sprintf("and %d more changes", more))
	}
	if fatal {
		st.fail(report.TotalFailed, report.FormatFailure, "the document was modified after signing in a way that is not permitted")
	} else if len(st.sr.Modifications) > 0 {
		st.warn("permitted changes after signing: %d", len(st.sr.Modifications))
	}
}

// docMDP returns the DocMDP permission (1, 2, 3) of a certification
// signature present in revision rev, or 0.
func docMDP(f *pdf.File, rev int) int {
	cat, err := f.Catalog(rev)
	if err != nil {
		return 0
	}
	perms := f.Dict(cat["Perms"], rev)
	if perms == nil {
		return 0
	}
	sig := f.Dict(perms["DocMDP"], rev)
	if sig == nil {
		return 0
	}
	refs, _ := f.ResolveArray(sig["Reference"], rev)
	for _, r := range refs {
		rd := f.Dict(r, rev)
		if rd == nil || rd.Name("TransformMethod") != "DocMDP" {
			continue
		}
		p := int64(2)
		if tp := f.Dict(rd["TransformParams"], rev); tp != nil {
			if x, ok := tp["P"].(int64); ok && x >= 1 && x <= 3 {
				p = x
			}
		}
		return int(p)
	}
	return 2
}

// classifyObject compares object n as of revision rev and as redefined in
// section k.
func classifyObject(f *pdf.File, s *pdf.SigField, rev, k int, n int64) (change, bool) {
	ref := pdf.Ref{Num: n}
	oldO, err1 := f.Lookup(ref, rev)
	newO, err2 := f.Lookup(ref, k)
	if err2 != nil {
		return change{msg: fmt.Sprintf("object %d is unreadable in revision %d", n, k), class: chFatal}, true
	}
	if err1 != nil {
		oldO = nil
	}
	if oldO == nil {
		return classifyNew(f, k, newO, n)
	}
	if objectsEqual(f, oldO, newO) {
		return change{}, false
	}
	if newO == nil {
		return change{msg: fmt.Sprintf("object %d was deleted", n), class: chAnnot}, true
	}
	if s.ValueRef.Num == n {
		return change{msg: "the signature dictionary itself was changed", class: chFatal}, true
	}
	oldD, newD := dictOf(oldO), dictOf(newO)
	if rr, ok := f.RootRef(rev); ok && rr.Num == n {
		return catalogChange(f, oldD, newD, rev, k), true
	}
	if info, ok := f.Trailer(rev)["Info"].(pdf.Ref); ok && info.Num == n {
		return change{msg: "document information changed", class: chMetadata}, true
	}
	if oldD == nil || newD == nil {
		if oa, ok := oldO.(pdf.Array); ok {
			if na, ok := newO.(pdf.Array); ok && superset(na, oa) {
				if onlySignatureFieldsAdded(f, oa, na, k) {
					return change{msg: "signature fields added", class: chSigning}, true
				}
				return change{msg: "annotations or fields added", class: chAnnot}, true
			}
		}
		return change{msg: fmt.Sprintf("object %d changed", n), class: chFatal}, true
	}
	switch {
	case oldD.Name("Type") == "Sig" || oldD.Name("Type") == "DocTimeStamp":
		return change{msg: fmt.Sprintf("signature dictionary %d changed", n), class: chFatal}, true
	case oldD.Name("Type") == "Metadata":
		return change{msg: "XMP metadata changed", class: chMetadata}, true
	case oldD.Name("Type") == "Page":
		annots := chAnnot
		oldA, _ := f.ResolveArray(oldD["Annots"], rev)
		if newA, _ := f.ResolveArray(newD["Annots"], k); superset(newA, oldA) && onlySignatureFieldsAdded(f, oldA, newA, k) {
			annots = chSigning // the widget of a new signature field
		}
		return diffDict(oldD, newD, "page", map[pdf.Name]changeClass{"Annots": annots}), true
	case oldD["Fields"] != nil && oldD.Name("Type") == "":
		oldF, _ := f.ResolveArray(oldD["Fields"], rev)
		newF, _ := f.ResolveArray(newD["Fields"], k)
		if !superset(newF, oldF) {
			return change{msg: "form fields were removed", class: chFatal}, true
		}
		return diffDict(oldD, newD, "form", map[pdf.Name]changeClass{"Fields": chSigning, "SigFlags": chSigning, "DR": chFormFill,
			"DA": chFormFill, "NeedAppearances": chFormFill}), true
	case oldD.Name("FT") == "Sig" || (oldD.Name("Subtype") == "Widget" && newD.Name("FT") == "Sig"):
		if _, had := oldD["V"]; had && !pdf.Equal(oldD["V"], newD["V"]) {
			return change{msg: fmt.Sprintf("the value of signature field %d was replaced", n), class: chFatal}, true
		}
		return diffDict(oldD, newD, "signature field", map[pdf.Name]changeClass{"V": chSigning, "AP": chSigning, "AS": chSigning,
			"MK": chSigning, "F": chSigning, "Lock": chSigning, "SV": chSigning}), true
	case oldD["FT"] != nil || oldD["T"] != nil || oldD.Name("Subtype") == "Widget":
		c := diffDict(oldD, newD, "form field", map[pdf.Name]changeClass{"V": chFormFill, "AP": chFormFill, "AS": chFormFill,
			"MK": chFormFill, "DV": chFormFill, "Kids": chSigning})
		c.field = fieldName(f, oldD, rev)
		if c.field == "" && oldD.Name("Subtype") == "Widget" {
			c.field = fieldName(f, f.Dict(oldD["Parent"], rev), rev)
		}
		return c, true
	case oldD.Name("Subtype") != "" && oldD["Rect"] != nil:
		return change{msg: "an annotation was changed", class: chAnnot}, true
	case oldD["VRI"] != nil || oldD["Certs"] != nil || oldD["OCSPs"] != nil || oldD["CRLs"] != nil:
		return change{}, false // DSS
	}
	return change{msg: fmt.Sprintf("object %d (%s) changed", n, typeOf(oldD)), class: chFatal}, true
}

func typeOf(d pdf.Dict) string {
	if t := d.Name("Type"); t != "" {
		return "/" + string(t)
	}
	if t := d.Name("Subtype"); t != "" {
		return "/" + string(t)
	}
	return "dictionary"
}

// classifyNew classifies an object that did not exist in the signed
// revision. New objects only matter through what refers to them, except
// pages and signature dictionaries.
func classifyNew(f *pdf.File, k int, o pdf.Object, n int64) (change, bool) {
	d := dictOf(o)
	if d == nil {
		return change{}, false
	}
	switch {
	case d.Name("Type") == "Page":
		return change{msg: "a page was added", class: chFatal}, true
	case d.Name("Type") == "Sig":
		return change{msg: "a signature was added", class: chSigning}, true
	case d.Name("Type") == "DocTimeStamp":
		return change{}, false
	case d.Name("Subtype") != "" && d.Name("Subtype") != "Widget" && d["Rect"] != nil:
		return change{msg: fmt.Sprintf("an annotation (/%s) was added", d.Name("Subtype")), class: chAnnot}, true
	case d.Name("FT") != "" && d.Name("FT") != "Sig":
		return change{msg: "a form field was added", class: chAnnot}, true
	}
	return change{}, false
}

func dictOf(o pdf.Object) pdf.Dict {
	switch x := o.(type) {
	case pdf.Dict:
		return x
	case *pdf.Stream:
		return x.Dict
	}
	return nil
}

// diffDict compares two dictionaries key by key: keys in allowed get their
// class, any other difference is fatal.
func diffDict(oldD, newD pdf.Dict, what string, allowed map[pdf.Name]changeClass) change {
	worst := change{class: chAllowed}
	keys := map[pdf.Name]bool{}
	for k := range oldD {
		keys[k] = true
	}
	for k := range newD {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, string(k))
	}
	sort.Strings(names)
	for _, name := range names {
		k := pdf.Name(name)
		if pdf.Equal(oldD[k], newD[k]) {
			continue
		}
		cl, ok := allowed[k]
		if !ok {
			return change{msg: fmt.Sprintf("%s entry /%s changed", what, k), class: chFatal}
		}
		if cl > worst.class {
			worst = change{msg: fmt.Sprintf("%s entry /%s changed", what, k), class: cl}
		}
	}
	if worst.msg == "" {
		worst.msg = what + " updated"
	}
	return worst
}

func superset(big, small pdf.Array) bool {
	for _, x := range small {
		found := false
		for _, y := range big {
			if pdf.Equal(x, y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// objectsEqual compares objects, including stream data.
func objectsEqual(f *pdf.File, a, b pdf.Object) bool {
	sa, ok1 := a.(*pdf.Stream)
	sb, ok2 := b.(*pdf.Stream)
	if ok1 && ok2 {
		if !pdf.Equal(sa.Dict, sb.Dict) || sa.Length != sb.Length {
			return false
		}
		if sa.Offset == sb.Offset {
			return true
		}
		da, err1 := f.RawStream(sa)
		db, err2 := f.RawStream(sb)
		return err1 == nil && err2 == nil && bytes.Equal(da, db)
	}
	return pdf.Equal(a, b)
}

// catalogChange classifies changes of the document catalog.
func catalogChange(f *pdf.File, oldD, newD pdf.Dict, rev, k int) change {
	c := diffDict(oldD, newD, "catalog", map[pdf.Name]changeClass{"DSS": chAllowed, "AcroForm": chSigning, "Extensions": chAllowed,
		"Metadata": chMetadata, "Perms": chAllowed, "Names": chAnnot})
	// Scripts added through the name tree are never a permitted change.
	oldN, newN := f.Dict(oldD["Names"], rev), f.Dict(newD["Names"], k)
	if newN != nil && newN["JavaScript"] != nil && (oldN == nil || !pdf.Equal(oldN["JavaScript"], newN["JavaScript"])) {
		return change{msg: "JavaScript was added to the document", class: chFatal}
	}
	if !pdf.Equal(oldD["OpenAction"], newD["OpenAction"]) {
		return change{msg: "the document's open action was changed", class: chFatal}
	}
	// Signature fields may be added, never removed.
	oldF, _ := f.ResolveArray(f.Dict(oldD["AcroForm"], rev)["Fields"], rev)
	newF, _ := f.ResolveArray(f.Dict(newD["AcroForm"], k)["Fields"], k)
	if !superset(newF, oldF) {
		return change{msg: "form fields were removed", class: chFatal}
	}
	return c
}

// onlySignatureFieldsAdded reports whether every element of newArr that is
// not in oldArr is a signature field (or its widget) that did not exist
// before: what signing adds to a page's /Annots or the form's /Fields, which
// a certification with P=2 or 3 permits (ISO 32000-2 §12.8.2.2).
func onlySignatureFieldsAdded(f *pdf.File, oldArr, newArr pdf.Array, k int) bool {
	for _, x := range newArr {
		found := false
		for _, y := range oldArr {
			if pdf.Equal(x, y) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		if d := f.Dict(x, k); d == nil || d.Name("FT") != "Sig" {
			return false
		}
	}
	return true
}
