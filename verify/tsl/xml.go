package tsl

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/beevik/etree"
)

// Limits bound what reading one list may cost. Zero fields take the
// defaults.
type Limits struct {
	// MaxBytes is the largest list accepted (default 32 MiB; the largest EU
	// national lists are a few MiB).
	MaxBytes int64
	// MaxDepth is the deepest element nesting accepted (default 64; a
	// trusted list nests about 15 deep).
	MaxDepth int
	// MaxElements is the most elements accepted (default 2,000,000).
	MaxElements int
}

// Default limits.
const (
	DefaultMaxBytes    = 32 << 20
	DefaultMaxDepth    = 64
	DefaultMaxElements = 2_000_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	return l
}

// Errors of reading the XML itself; each is wrapped with detail.
var (
	// ErrNotWellFormed: the bytes are not well-formed XML.
	ErrNotWellFormed = errors.New("tsl: not well-formed XML")
	// ErrDoctype: the document has a DOCTYPE (entity declarations are the
	// way into entity-expansion attacks; a trusted list has none).
	ErrDoctype = errors.New("tsl: DOCTYPE declarations are not accepted")
	// ErrTooLarge: the document exceeds Limits.
	ErrTooLarge = errors.New("tsl: document exceeds the limits")
)

// readXML scans raw as a stream under the limits and only then builds the
// element tree.
func readXML(raw []byte, lim Limits) (*etree.Document, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxBytes)
	}
	if err := scanXML(raw, lim); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: lim.MaxDepth + 1}
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWellFormed, err)
	}
	if doc.Root() == nil {
		return nil, fmt.Errorf("%w: no root element", ErrNotWellFormed)
	}
	return doc, nil
}

// scanXML walks the tokens once: well-formedness (as encoding/xml sees it),
// no DOCTYPE, bounded depth and element count, UTF-8 only.
func scanXML(raw []byte, lim Limits) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	// CharsetReader stays nil: any declared encoding but UTF-8 is an error.
	depth, elements, roots := 0, 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotWellFormed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			elements++
			if depth == 1 {
				roots++
			}
			if depth > lim.MaxDepth {
				return fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, lim.MaxDepth)
			}
			if elements > lim.MaxElements {
				return fmt.Errorf("%w: more than %d elements", ErrTooLarge, lim.MaxElements)
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return fmt.Errorf("%w (<!%.20s…>)", ErrDoctype, t)
		}
	}
	if roots != 1 || depth != 0 {
		return fmt.Errorf("%w: want exactly one root element", ErrNotWellFormed)
	}
	return nil
}

// ns resolves e's namespace.
func ns(e *etree.Element) string { return e.NamespaceURI() }

// is reports whether e is the element {space}local.
func is(e *etree.Element, space, local string) bool { return e.Tag == local && ns(e) == space }

// children returns e's child elements named {space}local.
func children(e *etree.Element, space, local string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if is(c, space, local) {
			out = append(out, c)
		}
	}
	return out
}

// child returns e's first child element named {space}local, or nil.
func child(e *etree.Element, space, local string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if is(c, space, local) {
			return c
		}
	}
	return nil
}

// path follows a chain of child elements in one namespace.
func path(e *etree.Element, space string, locals ...string) *etree.Element {
	for _, l := range locals {
		e = child(e, space, l)
	}
	return e
}

// text returns e's trimmed text, "" for nil.
func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return string(bytes.TrimSpace([]byte(e.Text())))
}

// walk calls f for every element under (and including) root, iteratively.
func walk(root *etree.Element, f func(*etree.Element)) {
	stack := []*etree.Element{root}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f(e)
		kids := e.ChildElements()
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
}

// attr returns e's attribute key, "" when e is nil or has none.
func attr(e *etree.Element, key string) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue(key, "")
}
