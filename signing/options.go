package signing

import (
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/thiqa/thiqa/signer"
)

// maxDictText bounds /Reason, /Location and /ContactInfo, in characters.
const maxDictText = 256

// DocumentOptions are the optional parts of a PDF signature or seal: what
// the signature dictionary says (reason, location, contact), a
// certification (DocMDP) and a visible appearance. The zero value (or a
// nil pointer) is an invisible approval signature, and costs nothing.
type DocumentOptions struct {
	// Reason, Location and ContactInfo fill the signature dictionary's
	// /Reason, /Location and /ContactInfo (shown by `thiqa verify`).
	Reason, Location, ContactInfo string
	// Certify, when 1, 2 or 3, makes a certification signature with that
	// DocMDP permission: 1 no change, 2 form filling and signatures, 3 also
	// annotations.
	Certify int
	// Appearance, when set, makes the signature visible.
	Appearance *AppearanceRequest

	// warnings are what the appearance could not show as asked.
	warnings []string
}

// Warnings returns what the last signature made with o could not show as
// asked (characters drawn with a fallback font, or with none).
func (o *DocumentOptions) Warnings() []string {
	if o == nil {
		return nil
	}
	return o.warnings
}

// WarningHeader carries, once per warning, what a visible signature could
// not show as asked (ASCII: other characters as \uXXXX).
const WarningHeader = "X-Thiqa-Warning"

// AppearanceRequest places a visible signature; what it shows comes from
// the certificate and the options (see signer.Appearance).
type AppearanceRequest struct {
	// Page is the 1-based page number.
	Page int
	// Rect is [x1 y1 x2 y2] in points, from the page's lower left corner.
	Rect [4]float64
	// Locale is the language of the labels and of the signing time ("ar"
	// or "en"); empty chooses from the certificate.
	Locale string
	// PNG is an optional image shown in the box.
	PNG []byte
}

// The query parameters of DocumentOptions.
const (
	paramReason      = "reason"
	paramLocation    = "location"
	paramContactInfo = "contactInfo"
	paramCertify     = "certify"
	paramVisible     = "visible"
	paramPage        = "page"
	paramRect        = "rect"
	paramLocale      = "locale"
)

// documentOptions reads DocumentOptions from the query of a seal or sign
// request: reason, location, contactInfo, certify=1|2|3, visible=1 with
// page=N and rect=x1,y1,x2,y2, locale. It returns nil, without allocating,
// when none is given.
func documentOptions(q url.Values) (*DocumentOptions, error) {
	if q.Get(paramReason) == "" && q.Get(paramLocation) == "" && q.Get(paramContactInfo) == "" &&
		q.Get(paramCertify) == "" && q.Get(paramVisible) == "" && q.Get(paramPage) == "" && q.Get(paramRect) == "" {
		return nil, nil
	}
	o := &DocumentOptions{Reason: q.Get(paramReason), Location: q.Get(paramLocation), ContactInfo: q.Get(paramContactInfo)}
	if c := q.Get(paramCertify); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 || n > 3 {
			return nil, Refuse(ErrBadRequest, "certify must be 1 (no changes), 2 (form filling and signing) or 3 (also annotations), got %q", c)
		}
		o.Certify = n
	}
	switch v := q.Get(paramVisible); v {
	case "", "0", "false":
		if q.Get(paramPage) != "" || q.Get(paramRect) != "" {
			return nil, Refuse(ErrBadRequest, "page and rect place a visible signature: add visible=1")
		}
	case "1", "true":
		a, err := appearanceRequest(q.Get(paramPage), q.Get(paramRect), q.Get(paramLocale))
		if err != nil {
			return nil, err
		}
		o.Appearance = a
	default:
		return nil, Refuse(ErrBadRequest, "visible must be 1 or 0, got %q", v)
	}
	return o, o.check()
}

// appearanceRequest parses page (1-based, default 1), rect
// ("x1,y1,x2,y2" in points) and locale.
func appearanceRequest(page, rect, locale string) (*AppearanceRequest, error) {
	a := &AppearanceRequest{Page: 1, Locale: locale}
	if page != "" {
		n, err := strconv.Atoi(page)
		if err != nil || n < 1 {
			return nil, Refuse(ErrBadRequest, "page must be a page number from 1, got %q", page)
		}
		a.Page = n
	}
	if rect == "" {
		return nil, Refuse(ErrBadRequest, "a visible signature needs rect=x1,y1,x2,y2 (points from the page's lower left corner)")
	}
	r, err := ParseRect(rect)
	if err != nil {
		return nil, err
	}
	a.Rect = r
	switch locale {
	case "", "ar", "en":
	default:
		return nil, Refuse(ErrBadRequest, "locale must be ar or en, got %q", locale)
	}
	return a, nil
}

// ParseRect parses "x1,y1,x2,y2" (points): four finite numbers with x1 <
// x2 and y1 < y2.
func ParseRect(s string) ([4]float64, error) {
	var r [4]float64
	rest := s
	for i := range r {
		part := rest
		if i < 3 {
			j := indexByte(rest, ',')
			if j < 0 {
				return r, Refuse(ErrBadRequest, "rect must be x1,y1,x2,y2, got %q", s)
			}
			part, rest = rest[:j], rest[j+1:]
		}
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || v != v || v > 1e6 || v < -1e6 {
			return r, Refuse(ErrBadRequest, "rect must be x1,y1,x2,y2 in points, got %q", s)
		}
		r[i] = v
	}
	if r[2]-r[0] < 1 || r[3]-r[1] < 1 {
		return r, Refuse(ErrBadRequest, "rect %q is empty: want x1 < x2 and y1 < y2", s)
	}
	return r, nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// check refuses texts the signature dictionary should not hold.
func (o *DocumentOptions) check() error {
	for _, f := range []struct{ name, v string }{{paramReason, o.Reason}, {paramLocation, o.Location}, {paramContactInfo, o.ContactInfo}} {
		if !utf8.ValidString(f.v) || utf8.RuneCountInString(f.v) > maxDictText {
			return Refuse(ErrBadRequest, "%s must be valid UTF-8 of at most %d characters", f.name, maxDictText)
		}
		for _, r := range f.v {
			if unicode.IsControl(r) {
				return Refuse(ErrBadRequest, "%s holds a control character", f.name)
			}
		}
	}
	if o.Certify < 0 || o.Certify > 3 {
		return Refuse(ErrBadRequest, "certify must be 1, 2 or 3")
	}
	return nil
}

// apply sets what o asks for on the signer's options; the appearance is
// built by the service (it needs the fonts and the certificate).
func (o *DocumentOptions) apply(so *signer.Options) {
	if o.Reason != "" {
		so.Reason = o.Reason
	}
	so.Location, so.ContactInfo, so.DocMDP = o.Location, o.ContactInfo, o.Certify
}

// applyDocumentOptions sets doc on the signer's options of a signature
// with cred (at so.Time, which tune may still change: the appearance then
// shows the time it is given here, so a two-step signature sets it first).
func (s *Service) applyDocumentOptions(doc *DocumentOptions, cred *Credential, seal bool, so *signer.Options) error {
	doc.apply(so)
	if doc.Appearance == nil {
		return nil
	}
	so.Page = doc.Appearance.Page - 1
	ap, err := s.appearance(doc.Appearance, cred, seal, so.Time, doc.Reason, doc.Location)
	if err != nil {
		return err
	}
	so.Appearance = ap
	return nil
}

// ParseDocumentOptions reads DocumentOptions from query parameters as the
// seal and sign endpoints take them (for the CLI, which builds the same
// query); nil when none is given.
func ParseDocumentOptions(q url.Values) (*DocumentOptions, error) { return documentOptions(q) }
