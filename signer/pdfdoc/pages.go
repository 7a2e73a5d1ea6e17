package pdfdoc

import "fmt"

// maxPages bounds the page-tree walk.
const maxPages = 1 << 20

// RootRef returns the reference of the document catalog.
func (rd *Reader) RootRef() Ref {
	r, _ := rd.Trailer["Root"].(Ref)
	return r
}

// Catalog returns the document catalog.
func (rd *Reader) Catalog() (Dict, error) {
	d, err := rd.ResolveDict(rd.RootRef())
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, malformed("catalog is not a dictionary")
	}
	return d, nil
}

// Page returns the reference and dictionary of page i (0-based).
func (rd *Reader) Page(i int) (Ref, Dict, error) {
	if i < 0 {
		return Ref{}, nil, fmt.Errorf("%w: page %d", ErrNoPage, i+1)
	}
	cat, err := rd.Catalog()
	if err != nil {
		return Ref{}, nil, err
	}
	root, ok := cat["Pages"].(Ref)
	if !ok {
		return Ref{}, nil, malformed("catalog has no /Pages reference")
	}
	seen := map[int]bool{}
	count := 0
	var walk func(ref Ref, depth int) (Ref, Dict, bool, error)
	walk = func(ref Ref, depth int) (Ref, Dict, bool, error) {
		if depth > maxDepth || seen[ref.Num] || count > maxPages {
			return Ref{}, nil, false, malformed("page tree loops or is too deep")
		}
		seen[ref.Num] = true
		d, err := rd.ResolveDict(ref)
		if err != nil {
			return Ref{}, nil, false, err
		}
		if d == nil {
			return Ref{}, nil, false, malformed("page tree node %d is not a dictionary", ref.Num)
		}
		kids, isNode := d["Kids"]
		if d.Name("Type") == "Page" || !isNode {
			if count == i {
				return ref, d, true, nil
			}
			count++
			return Ref{}, nil, false, nil
		}
		if n, ok := d.Int("Count"); ok && d.Name("Type") == "Pages" && int64(count)+n <= int64(i) && n >= 0 {
			count += int(n)
			return Ref{}, nil, false, nil
		}
		arr, err := rd.Resolve(kids)
		if err != nil {
			return Ref{}, nil, false, err
		}
		a, _ := arr.(Array)
		for _, k := range a {
			kr, ok := k.(Ref)
			if !ok {
				continue
			}
			r, pd, found, err := walk(kr, depth+1)
			if err != nil || found {
				return r, pd, found, err
			}
		}
		return Ref{}, nil, false, nil
	}
	r, d, found, err := walk(root, 0)
	if err != nil {
		return Ref{}, nil, err
	}
	if !found {
		return Ref{}, nil, fmt.Errorf("%w: page %d", ErrNoPage, i+1)
	}
	return r, d, nil
}
