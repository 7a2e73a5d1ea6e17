package verify

import (
	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// maxDictText bounds what the report repeats of a signature dictionary's
// free-text entries.
const maxDictText = 1024

// readSigDict copies what the signer wrote in the signature dictionary and
// nobody verifies — /Reason, /Location, /ContactInfo — into sr, and the
// DocMDP permission of a certification signature.
func readSigDict(f *pdf.File, s *pdf.SigField, sr *report.Signature) {
	text := func(key pdf.Name) string {
		o, err := f.Resolve(s.Value[key], s.DefinedIn)
		if err != nil {
			return ""
		}
		str, ok := o.(pdf.String)
		if !ok {
			return ""
		}
		// Cut between characters: a cut through one showed U+FFFD.
		return pdf.TextStringPrefix(str.Bytes, maxDictText)
	}
	sr.Reason, sr.Location, sr.ContactInfo = text("Reason"), text("Location"), text("ContactInfo")
	refs, _ := f.ResolveArray(s.Value["Reference"], s.DefinedIn)
	for _, r := range refs {
		rd := f.Dict(r, s.DefinedIn)
		if rd == nil || rd.Name("TransformMethod") != "DocMDP" {
			continue
		}
		sr.CertificationPermission = 2 // the default of ISO 32000-2 §12.8.2.2
		if tp := f.Dict(rd["TransformParams"], s.DefinedIn); tp != nil {
			if p, ok := tp["P"].(int64); ok && p >= 1 && p <= 3 {
				sr.CertificationPermission = int(p)
			}
		}
	}
}
