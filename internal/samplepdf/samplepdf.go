// Package samplepdf writes sample PDFs of any size for the tests and load
// generators that sign them.
package samplepdf

import (
	"bufio"
	"fmt"
	"io"
)

// Write writes a valid classic-xref PDF of one page whose content
// stream is padded with comment lines to about size bytes, streaming (a
// 200 MB sample never sits in memory). Benchmarks and tests sign it.
func Write(out io.Writer, size int64) error {
	w := &countingWriter{w: bufio.NewWriterSize(out, 1<<16)}
	var offs []int64
	obj := func(body string) {
		offs = append(offs, w.n)
		fmt.Fprintf(w, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	io.WriteString(w, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	obj("<</Type /Catalog /Pages 2 0 R>>")
	obj("<</Type /Pages /Kids [4 0 R] /Count 1>>")
	obj("<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>")
	obj("<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources <</Font <</F1 3 0 R>>>> /Contents 5 0 R>>")
	text := "BT /F1 18 Tf 72 760 Td (Thiqa sample document) Tj ET\n"
	line := "% sample padding sample padding sample padding sample padding sample\n"
	pad := max(size-1024, 0) / int64(len(line))
	offs = append(offs, w.n)
	fmt.Fprintf(w, "5 0 obj\n<</Length %d>>\nstream\n%s", int64(len(text))+pad*int64(len(line)), text)
	for i := int64(0); i < pad; i++ {
		io.WriteString(w, line)
	}
	io.WriteString(w, "\nendstream\nendobj\n")
	xref := w.n
	fmt.Fprintf(w, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(w, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(w, "trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	if w.err != nil {
		return w.err
	}
	return w.w.(*bufio.Writer).Flush()
}

// countingWriter counts the bytes written and keeps the first error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}
