package pdf

import (
	"errors"
	"fmt"
)

// MaxSignatures bounds the signature values a document may hold: each one
// is validated in full, so an upload of many fields pointing at one
// signature would otherwise buy minutes of CPU for a few megabytes. Honest
// documents (signers, seals and years of archive time-stamps) stay far below.
const MaxSignatures = 256

// ErrTooManySignatures is wrapped when a field tree holds more than
// MaxSignatures signature values.
var ErrTooManySignatures = errors.New("pdf: too many signatures")

// maxFieldNodes bounds the field dictionaries one walk of the field tree
// visits. Direct field dictionaries are not de-duplicated, so a few kilobytes
// of arrays whose two direct kids share the next array would otherwise make
// the walk exponential in the depth. Large real forms hold a few thousand.
const maxFieldNodes = 1 << 15

// maxFieldName bounds a fully qualified field name in bytes: each level of
// the tree adds its partial name, so long /T strings repeated down a deep
// tree would otherwise cost the depth times their length for every field.
const maxFieldName = 1 << 10

// SigField is a signature field with a signature value (/Sig or
// /DocTimeStamp dictionary).
type SigField struct {
	// Name is the fully qualified field name.
	Name string
	// Field is the field dictionary's reference (zero if direct).
	Field Ref
	// ValueRef is the signature dictionary's reference (zero if direct).
	ValueRef Ref
	// Value is the signature dictionary.
	Value Dict
	// InObjectStream is true when the signature dictionary lives in an
	// object stream (then /Contents has no position in the file).
	InObjectStream bool
	// Contents is the /Contents string with its byte span in the file.
	Contents String
	// ByteRange is the /ByteRange array (nil if absent or malformed).
	ByteRange []int64
	// DefinedIn is the revision whose cross-reference section defines the
	// signature dictionary.
	DefinedIn int
}

// Type returns /Type of the signature dictionary ("Sig" when absent).
func (s *SigField) Type() string {
	if t := s.Value.Name("Type"); t != "" {
		return string(t)
	}
	return "Sig"
}

// SubFilter returns the /SubFilter.
func (s *SigField) SubFilter() string { return string(s.Value.Name("SubFilter")) }

// Signatures lists signature fields with values as of revision rev (the
// latest when rev < 0), walking the AcroForm field tree with cycle and
// depth limits. It stops with ErrTooManySignatures after MaxSignatures.
func (f *File) Signatures(rev int) ([]*SigField, error) {
	sigs, _, err := f.SignaturesVisited(rev)
	return sigs, err
}

// SignaturesVisited is Signatures that also tells how many field
// dictionaries the walk visited, so that a caller walking many revisions
// can bound their sum.
func (f *File) SignaturesVisited(rev int) (sigs []*SigField, visited int, err error) {
	if rev < 0 {
		rev = len(f.Sections) - 1
	}
	cat, err := f.Catalog(rev)
	if err != nil {
		return nil, 0, err
	}
	form := f.Dict(cat["AcroForm"], rev)
	if form == nil {
		return nil, 0, nil
	}
	fields, _ := f.resolveArray(form["Fields"], rev)
	var out []*SigField
	seen := map[Ref]bool{}
	var walk func(o Object, parentName string, inheritedFT Name, depth int) error
	walk = func(o Object, parentName string, inheritedFT Name, depth int) error {
		if depth > maxDepth {
			return malformed("field tree deeper than %d", maxDepth)
		}
		if visited++; visited > maxFieldNodes {
			return malformed("field tree of more than %d fields", maxFieldNodes)
		}
		ref, isRef := o.(Ref)
		if isRef {
			if seen[ref] {
				return nil
			}
			seen[ref] = true
		}
		d := f.Dict(o, rev)
		if d == nil {
			return nil
		}
		name := parentName
		if t, ok := d["T"].(String); ok && len(name) < maxFieldName {
			if name != "" {
				name += "."
			}
			// Cut at a character: a cut through one showed U+FFFD.
			name += TextStringPrefix(t.Bytes, maxFieldName-len(name))
		}
		ft := inheritedFT
		if x := d.Name("FT"); x != "" {
			ft = x
		}
		if kids, ok := f.resolveArray(d["Kids"], rev); ok && len(kids) > 0 {
			for _, k := range kids {
				if err := walk(k, name, ft, depth+1); err != nil {
					return err
				}
			}
		}
		if ft != "Sig" {
			return nil
		}
		v, ok := d["V"]
		if !ok {
			return nil
		}
		sf := &SigField{Name: name}
		if isRef {
			sf.Field = ref
		}
		if vr, ok := v.(Ref); ok {
			sf.ValueRef = vr
			e, sec, found := f.entryAt(vr.Num, rev)
			if found {
				sf.InObjectStream = e.typ == 2
				sf.DefinedIn = sec
			}
		}
		sf.Value = f.Dict(v, rev)
		if sf.Value == nil {
			return nil
		}
		if c, ok := sf.Value["Contents"].(String); ok {
			sf.Contents = c
		}
		if br, ok := f.resolveArray(sf.Value["ByteRange"], rev); ok {
			for _, x := range br {
				n, ok := x.(int64)
				if !ok {
					sf.ByteRange = nil
					break
				}
				sf.ByteRange = append(sf.ByteRange, n)
			}
		}
		if len(out) == MaxSignatures {
			return fmt.Errorf("%w: more than %d signature fields", ErrTooManySignatures, MaxSignatures)
		}
		out = append(out, sf)
		return nil
	}
	for _, fo := range fields {
		if err := walk(fo, "", "", 0); err != nil {
			return out, visited, err
		}
	}
	return out, visited, nil
}

func (f *File) resolveArray(o Object, rev int) (Array, bool) {
	o, err := f.Resolve(o, rev)
	if err != nil {
		return nil, false
	}
	a, ok := o.(Array)
	return a, ok
}

// ResolveArray resolves o to an array.
func (f *File) ResolveArray(o Object, rev int) (Array, bool) { return f.resolveArray(o, rev) }

// String returns a description of the revision layout, for debugging.
func (f *File) String() string {
	s := fmt.Sprintf("PDF %d bytes, %d revisions:", f.size, len(f.Sections))
	for i, sec := range f.Sections {
		s += fmt.Sprintf(" [%d xref@%d end@%d]", i, sec.Offset, sec.End)
	}
	return s
}
