package pdf

import (
	"bytes"
	"fmt"
)

// entryAt finds the cross-reference entry of num as of revision rev
// (index into Sections), newest section first.
func (f *File) entryAt(num int64, rev int) (entry, int, bool) {
	if rev < 0 || rev >= len(f.Sections) {
		rev = len(f.Sections) - 1
	}
	for i := rev; i >= 0; i-- {
		if e, ok := f.Sections[i].entries[num]; ok {
			return e, i, true
		}
	}
	return entry{}, -1, false
}

// DefinedIn returns the index of the section that defines num's value as of
// revision rev, or -1.
func (f *File) DefinedIn(num int64, rev int) int {
	_, i, ok := f.entryAt(num, rev)
	if !ok {
		return -1
	}
	return i
}

// Lookup returns the object ref points to as of revision rev (the latest
// when rev < 0). A missing or free object is null.
func (f *File) Lookup(ref Ref, rev int) (Object, error) {
	return f.lookup(ref, rev, 0)
}

func (f *File) lookup(ref Ref, rev, depth int) (Object, error) {
	if rev < 0 {
		rev = len(f.Sections) - 1
	}
	if depth > maxRefChain {
		return nil, malformed("reference chain too long at %v", ref)
	}
	e, sec, ok := f.entryAt(ref.Num, rev)
	if !ok || e.typ == 0 {
		return nil, nil
	}
	key := objKey{rev: sec, num: ref.Num}
	if o, ok := f.objCache[key]; ok {
		return o, nil
	}
	var o Object
	var err error
	switch e.typ {
	case 1:
		// The object at an offset is the same in every revision that
		// points there, unless it is a stream whose indirect /Length was
		// looked up (that answer depends on the revision).
		if c, ok := f.offCache[e.off]; ok && c.num == ref.Num {
			f.objCache[key] = c.obj
			return c.obj, nil
		}
		revDependent := false
		lengthOf := func(r Ref) (Object, error) {
			revDependent = true
			return f.lookup(r, rev, depth+1)
		}
		var got Ref
		got, o, err = f.readObjectAt(e.off, lengthOf, depth)
		if err == nil && got.Num != ref.Num {
			err = malformed("object %d found where %d was expected", got.Num, ref.Num)
		}
		if err == nil && !revDependent {
			f.offCache[e.off] = offObject{num: ref.Num, obj: o}
		}
		if err != nil {
			// A damaged offset: fall back to the scanned position.
			if off, ok := f.scanObjects()[ref.Num]; ok && off != e.off {
				f.Repaired = true
				got, o, err = f.readObjectAt(off, func(r Ref) (Object, error) { return f.lookup(r, rev, depth+1) }, depth)
			}
		}
	case 2:
		o, err = f.fromObjStream(e.off, e.gen, ref.Num, rev, depth)
	}
	if err != nil {
		return nil, err
	}
	f.objCache[key] = o
	return o, nil
}

func (f *File) fromObjStream(stmNum, index, num int64, rev, depth int) (Object, error) {
	skey := objKey{rev: f.DefinedIn(stmNum, rev), num: stmNum}
	os, ok := f.stmCache[skey]
	if !ok {
		so, err := f.lookup(Ref{Num: stmNum}, rev, depth+1)
		if err != nil {
			return nil, err
		}
		st, isStm := so.(*Stream)
		if !isStm || st.Dict.Name("Type") != "ObjStm" {
			return nil, malformed("object %d is not an object stream", stmNum)
		}
		data, err := f.decode(st)
		if err != nil {
			return nil, err
		}
		os = &objStream{data: data}
		os.first, _ = st.Dict["First"].(int64)
		os.n, _ = st.Dict["N"].(int64)
		f.stmCache[skey] = os
	}
	data, first, n := os.data, os.first, os.n
	if first < 0 || first > int64(len(data)) || n < 0 || n > maxArrayLen || index < 0 || index >= n {
		return nil, malformed("bad object stream header")
	}
	r := bytes.NewReader(data)
	hl := newLexer(r, int64(len(data)), 0)
	var off int64 = -1
	for k := int64(0); k <= index; k++ {
		a, err1 := hl.next()
		b, err2 := hl.next()
		if err1 != nil || err2 != nil || a.kind != tInt || b.kind != tInt {
			return nil, malformed("bad object stream index")
		}
		if k == index {
			if a.i != num {
				return nil, malformed("object stream %d holds %d, not %d", stmNum, a.i, num)
			}
			off = b.i
		}
	}
	if off < 0 || first+off >= int64(len(data)) {
		return nil, malformed("object offset outside object stream")
	}
	ol := newLexer(r, int64(len(data)), first+off)
	return ol.object(0)
}

// Resolve follows references until a direct object (as of revision rev).
func (f *File) Resolve(o Object, rev int) (Object, error) {
	for i := 0; i < maxRefChain; i++ {
		r, ok := o.(Ref)
		if !ok {
			return o, nil
		}
		var err error
		if o, err = f.Lookup(r, rev); err != nil {
			return nil, err
		}
	}
	return nil, malformed("reference chain too long")
}

// Dict resolves o to a dictionary (a stream's dictionary counts); nil if
// it is not one.
func (f *File) Dict(o Object, rev int) Dict {
	o, err := f.Resolve(o, rev)
	if err != nil {
		return nil
	}
	switch x := o.(type) {
	case Dict:
		return x
	case *Stream:
		return x.Dict
	}
	return nil
}

// Trailer returns the trailer of revision rev.
func (f *File) Trailer(rev int) Dict {
	if rev < 0 || rev >= len(f.Sections) {
		rev = len(f.Sections) - 1
	}
	return f.Sections[rev].Trailer
}

// Catalog returns the document catalog as of revision rev, resolving /Root
// from the newest trailer up to rev that has one.
func (f *File) Catalog(rev int) (Dict, error) {
	if rev < 0 || rev >= len(f.Sections) {
		rev = len(f.Sections) - 1
	}
	for i := rev; i >= 0; i-- {
		if root, ok := f.Sections[i].Trailer["Root"]; ok {
			d := f.Dict(root, rev)
			if d == nil {
				return nil, malformed("catalog is not a dictionary")
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w: no /Root", ErrMalformed)
}

// RootRef returns the /Root reference as of revision rev.
func (f *File) RootRef(rev int) (Ref, bool) {
	if rev < 0 || rev >= len(f.Sections) {
		rev = len(f.Sections) - 1
	}
	for i := rev; i >= 0; i-- {
		if r, ok := f.Sections[i].Trailer["Root"].(Ref); ok {
			return r, true
		}
	}
	return Ref{}, false
}

// RevisionEndingAt returns the index of the revision whose %%EOF ends at
// end (with or without its end-of-line), or -1.
func (f *File) RevisionEndingAt(end int64) int {
	found := -1
	for i, s := range f.Sections {
		if end == s.End || end == s.EndEOL {
			found = i
		}
	}
	return found
}
