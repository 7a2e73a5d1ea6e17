package verify

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// change is one classified difference after a signed revision.
type change struct {
	msg   string
	class changeClass
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

// checkModifications classifies the incremental updates after revision rev
// and fails the signature when one is not permitted (EN 319 142-1, ISO
// 32000-2 §12.8.2: DocMDP and FieldMDP).
func (v *Verifier) checkModifications(dc *docContext, s *pdf.SigField, rev int, st sigState) {
	f := dc.f
	if rev < 0 || rev >= len(f.Sections)-1 {
		return
	}
	perm := docMDP(f, rev)
	var changes []change
	seen := 0
	for k := rev + 1; k < len(f.Sections); k++ {
		nums := f.Sections[k].Objects()
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		for _, n := range nums {
			seen++
			if seen > maxDiffObjects {
				changes = append(changes, change{"too many changed objects to analyse", chFatal})
				break
			}
			if c, ok := classifyObject(f, s, rev, k, n); ok {
				changes = append(changes, c)
			}
		}
	}
	fatal := false
	msgs := map[string]bool{}
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
		if !allowedByMDP {
			fatal = true
			if perm > 0 && c.class != chFatal {
				c.msg += fmt.Sprintf(" (not permitted by the certification signature, P=%d)", perm)
			}
		}
		if !msgs[c.msg] {
			msgs[c.msg] = true
			st.sr.Modifications = append(st.sr.Modifications, c.msg)
		}
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
		return change{fmt.Sprintf("object %d is unreadable in revision %d", n, k), chFatal}, true
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
		return change{fmt.Sprintf("object %d was deleted", n), chAnnot}, true
	}
	if s.ValueRef.Num == n {
		return change{"the signature dictionary itself was changed", chFatal}, true
	}
	oldD, newD := dictOf(oldO), dictOf(newO)
	if rr, ok := f.RootRef(rev); ok && rr.Num == n {
		c := diffDict(oldD, newD, "catalog", map[pdf.Name]changeClass{"DSS": chAllowed, "AcroForm": chSigning, "Extensions": chAllowed,
			"Metadata": chMetadata, "Perms": chAllowed, "Names": chAnnot})
		// Scripts added through the name tree are never a permitted change.
		oldN, newN := f.Dict(oldD["Names"], rev), f.Dict(newD["Names"], k)
		if newN != nil && newN["JavaScript"] != nil && (oldN == nil || !pdf.Equal(oldN["JavaScript"], newN["JavaScript"])) {
			return change{"JavaScript was added to the document", chFatal}, true
		}
		if oldD["OpenAction"] != nil || newD["OpenAction"] != nil {
			if !pdf.Equal(oldD["OpenAction"], newD["OpenAction"]) {
				return change{"the document's open action was changed", chFatal}, true
			}
		}
		return c, true
	}
	if info, ok := f.Trailer(rev)["Info"].(pdf.Ref); ok && info.Num == n {
		return change{"document information changed", chMetadata}, true
	}
	if oldD == nil || newD == nil {
		if oa, ok := oldO.(pdf.Array); ok {
			if na, ok := newO.(pdf.Array); ok && superset(na, oa) {
				return change{"annotations or fields added", chAnnot}, true
			}
		}
		return change{fmt.Sprintf("object %d changed", n), chFatal}, true
	}
	switch {
	case oldD.Name("Type") == "Sig" || oldD.Name("Type") == "DocTimeStamp":
		return change{fmt.Sprintf("signature dictionary %d changed", n), chFatal}, true
	case oldD.Name("Type") == "Metadata":
		return change{"XMP metadata changed", chMetadata}, true
	case oldD.Name("Type") == "Page":
		return diffDict(oldD, newD, "page", map[pdf.Name]changeClass{"Annots": chAnnot}), true
	case oldD["Fields"] != nil && oldD.Name("Type") == "":
		return diffDict(oldD, newD, "form", map[pdf.Name]changeClass{"Fields": chSigning, "SigFlags": chSigning, "DR": chFormFill,
			"DA": chFormFill, "NeedAppearances": chFormFill}), true
	case oldD.Name("FT") == "Sig" || (oldD.Name("Subtype") == "Widget" && newD.Name("FT") == "Sig"):
		if _, had := oldD["V"]; had && !pdf.Equal(oldD["V"], newD["V"]) {
			return change{fmt.Sprintf("the value of signature field %d was replaced", n), chFatal}, true
		}
		return diffDict(oldD, newD, "signature field", map[pdf.Name]changeClass{"V": chSigning, "AP": chSigning, "AS": chSigning,
			"MK": chSigning, "F": chSigning, "Lock": chSigning, "SV": chSigning}), true
	case oldD["FT"] != nil || oldD["T"] != nil || oldD.Name("Subtype") == "Widget":
		return diffDict(oldD, newD, "form field", map[pdf.Name]changeClass{"V": chFormFill, "AP": chFormFill, "AS": chFormFill,
			"MK": chFormFill, "DV": chFormFill, "Kids": chSigning}), true
	case oldD.Name("Subtype") != "" && oldD["Rect"] != nil:
		return change{"an annotation was changed", chAnnot}, true
	case oldD["VRI"] != nil || oldD["Certs"] != nil || oldD["OCSPs"] != nil || oldD["CRLs"] != nil:
		return change{}, false // DSS
	}
	return change{fmt.Sprintf("object %d (%s) changed", n, typeOf(oldD)), chFatal}, true
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
		return change{"a page was added", chFatal}, true
	case d.Name("Type") == "Sig":
		return change{"a signature was added", chSigning}, true
	case d.Name("Type") == "DocTimeStamp":
		return change{}, false
	case d.Name("Subtype") != "" && d.Name("Subtype") != "Widget" && d["Rect"] != nil:
		return change{fmt.Sprintf("an annotation (/%s) was added", d.Name("Subtype")), chAnnot}, true
	case d.Name("FT") != "" && d.Name("FT") != "Sig":
		return change{"a form field was added", chAnnot}, true
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
			return change{fmt.Sprintf("%s entry /%s changed", what, k), chFatal}
		}
		if cl > worst.class {
			worst = change{fmt.Sprintf("%s entry /%s changed", what, k), cl}
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
