package pdf

import (
	"bytes"
	"testing"
)

// FuzzParsePDF opens arbitrary bytes as a PDF and walks its signatures and
// every object of every revision: it must never panic nor hang.
func FuzzParsePDF(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n48\n%%EOF\n"))
	f.Add([]byte("%PDF-1.5\n1 0 obj\n<< /Type /XRef /W [1 2 1] /Size 1 /Length 4 >>\nstream\n\x01\x00\x09\x00\nendstream\nendobj\nstartxref\n9\n%%EOF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		sigs, _ := file.Signatures(-1)
		for _, s := range sigs {
			_ = s.SubFilter()
		}
		for rev := range file.Sections {
			for _, n := range file.Sections[rev].Objects() {
				o, err := file.Lookup(Ref{Num: n}, rev)
				if err != nil {
					continue
				}
				if st, ok := o.(*Stream); ok {
					file.Decode(st) //nolint:errcheck
				}
			}
			file.Catalog(rev) //nolint:errcheck
		}
	})
}
