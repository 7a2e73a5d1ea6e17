package portal

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
)

// csrfPeekBytes bounds what is read of a form's body before its CSRF token
// is checked. The pages put the token first in every form, and browsers
// send the fields in the order of the form, so an honest form carries it
// in its first few hundred bytes; a forged one (from another site, or
// without the session's token) is refused after at most this much, not
// after the 11 MiB an upload may hold.
const csrfPeekBytes = 64 << 10

// peekCSRF reads the CSRF token of a POST form from the start of its body
// (at most csrfPeekBytes, and for a multipart form only the fields before
// the first file) and puts back what it read, so that the form is then
// parsed whole as if nothing had been read. It returns "" when the token
// is not there: another content type (nothing is read), a body that does
// not parse, or a token after a file or past csrfPeekBytes. Reading the
// body failing (the client went away, a broken chunked encoding) is err:
// that form is answered as its full parse would be, not as a forgery.
func peekCSRF(r *http.Request) (token string, err error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || r.Body == nil {
		return "", nil
	}
	var read bytes.Buffer
	body := r.Body
	rec := &readFailure{r: body}
	defer func() {
		if rec.err != nil {
			token, err = "", fmt.Errorf("reading the form: %w", rec.err)
		}
	}()
	defer func() {
		if read.Len() > 0 {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(read.Bytes()), body), body}
		}
	}()
	src := io.TeeReader(io.LimitReader(rec, csrfPeekBytes), &read)
	switch mt {
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(src)
		if err != nil {
			return "", nil
		}
		if len(b) == csrfPeekBytes {
			// Only the pairs read whole: the last one may go on.
			b = b[:max(0, bytes.LastIndexByte(b, '&'))]
		}
		vals, _ := url.ParseQuery(string(b)) // the pairs that parse; the full parse judges the rest
		return vals.Get("csrf"), nil
	case "multipart/form-data":
		if params["boundary"] == "" {
			return "", nil
		}
		mr := multipart.NewReader(src, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil || part.FileName() != "" {
				return "", nil
			}
			if part.FormName() == "csrf" {
				b, err := io.ReadAll(io.LimitReader(part, 256))
				if err != nil {
					return "", nil
				}
				return string(b), nil
			}
			if _, err := io.Copy(io.Discard, part); err != nil {
				return "", nil
			}
		}
	}
	return "", nil
}

// readFailure reads r and keeps its first error other than io.EOF.
type readFailure struct {
	r   io.Reader
	err error
}

func (f *readFailure) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}
