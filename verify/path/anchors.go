package path

import "crypto/x509"

// AnchorIndex finds trust anchors by subject name, so that path building
// looks up the anchors that may have issued a certificate instead of
// comparing the issuer with every anchor: a trusted list brings thousands
// of them, and a verifier builds several paths per document. Build it once
// (NewAnchorIndex) and share it; it is read-only afterwards and safe for
// concurrent use.
type AnchorIndex struct {
	byName map[string][]*x509.Certificate // by prepared subject (prepareName)
	odd    []*x509.Certificate            // subjects prepareName does not handle
	raw    map[string]struct{}            // every anchor's DER
	all    []*x509.Certificate
}

// NewAnchorIndex indexes roots.
func NewAnchorIndex(roots []*x509.Certificate) *AnchorIndex {
	ix := &AnchorIndex{byName: map[string][]*x509.Certificate{}, raw: map[string]struct{}{}}
	for _, r := range roots {
		if r == nil {
			continue
		}
		if _, dup := ix.raw[string(r.Raw)]; dup {
			continue
		}
		ix.raw[string(r.Raw)] = struct{}{}
		ix.all = append(ix.all, r)
		if p := prepareName(r.RawSubject); p.ok {
			ix.byName[p.key] = append(ix.byName[p.key], r)
		} else {
			ix.odd = append(ix.odd, r)
		}
	}
	return ix
}

// Len is the number of anchors.
func (ix *AnchorIndex) Len() int { return len(ix.all) }

// contains reports whether c is one of the anchors.
func (ix *AnchorIndex) contains(c *x509.Certificate) bool {
	_, ok := ix.raw[string(c.Raw)]
	return ok
}

// issuersOf returns the anchors whose subject equals issuer (nameEqual),
// in the order they were given.
func (ix *AnchorIndex) issuersOf(issuer []byte, names *nameMemo) []*x509.Certificate {
	p := names.prepared(issuer)
	if !p.ok {
		var out []*x509.Certificate
		for _, r := range ix.all {
			if nameEqual(issuer, r.RawSubject) {
				out = append(out, r)
			}
		}
		return out
	}
	out := ix.byName[p.key]
	if len(ix.odd) == 0 {
		return out
	}
	out = append([]*x509.Certificate(nil), out...)
	for _, r := range ix.odd {
		if nameEqual(issuer, r.RawSubject) {
			out = append(out, r)
		}
	}
	return out
}
