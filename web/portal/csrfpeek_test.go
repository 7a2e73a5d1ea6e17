package portal

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// countingBody is a request body of n bytes, head then filler, that
// counts what the handler read of it.
type countingBody struct {
	head []byte
	n    int64
	read int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), b.n-b.read))
	for i := range k {
		if off := b.read + int64(i); off < int64(len(b.head)) {
			p[i] = b.head[off]
		} else {
			p[i] = 'A'
		}
	}
	b.read += int64(k)
	return k, nil
}

func (b *countingBody) Close() error { return nil }

// TestForgedLargeFormRefusedUnread: a POST to the portal or the officer
// console was read whole (up to 11 MiB, kept in memory up to 1 MiB and on
// disk past it) before its CSRF token was checked, so forged posts of large
// bodies (40 at once held 165 MB) cost the server their size. Now a form
// without the session's token is refused after at most csrfPeekBytes of
// it: one without a session, one whose token is wrong or comes after the
// file, and a large url-encoded one without a token, each 403 and audited
// as before. An honest upload, token first, is read whole and served.
func TestForgedLargeFormRefusedUnread(t *testing.T) {
	f := newFixture(t)
	who := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
	se, cookie := f.p.ses.login(nil, who, "citizen")
	const size = 11 << 20

	multipartHead := func(fields ...string) (head []byte, contentType string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "document" {
				w, _ := mw.CreateFormFile("document", "a.pdf")
				_, _ = w.Write([]byte("%PDF-1.7\n"))
				return b.Bytes(), mw.FormDataContentType() // the file goes on with the filler, unclosed
			}
			_ = mw.WriteField(fields[i], fields[i+1])
		}
		return b.Bytes(), mw.FormDataContentType()
	}
	post := func(path string, withSession bool, head []byte, contentType string, n int64) (int, int64) {
		body := &countingBody{head: head, n: n}
		r := httptest.NewRequest(http.MethodPost, path+"?lang=en", nil)
		r.Body, r.ContentLength = body, n
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Origin", "https://attacker.example")
		if withSession {
			r.AddCookie(&http.Cookie{Name: cookieName(false), Value: cookie})
		}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w.Code, body.read
	}

	noToken, ct := multipartHead("credential", "c1", "document", "")
	wrongToken, ct2 := multipartHead("csrf", "forged", "credential", "c1", "document", "")
	tokenAfterFile, ct3 := multipartHead("document", "")
	for _, c := range []struct {
		name, path  string
		session     bool
		head        []byte
		contentType string
	}{
		{"multipart without a session", "/my/sign", false, noToken, ct},
		{"multipart without a token", "/my/sign", true, noToken, ct},
		{"multipart with a wrong token", "/my/sign", true, wrongToken, ct2},
		{"multipart, the file first", "/my/sign", true, tokenAfterFile, ct3},
		{"url-encoded without a token", "/ra/login", true, []byte("token=officer&x="), "application/x-www-form-urlencoded"},
		{"url-encoded with a wrong token", "/my/logout", true, []byte("csrf=forged&x="), "application/x-www-form-urlencoded"},
		{"text/plain", "/my/logout", true, []byte("csrf=" + se.csrf), "text/plain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(f.audit.actions())
			code, read := post(c.path, c.session, c.head, c.contentType, size)
			if code != http.StatusForbidden {
				t.Fatalf("%d, want 403", code)
			}
			if read > csrfPeekBytes+4096 {
				t.Fatalf("%d bytes of the %d read before the refusal, want at most %d", read, size, csrfPeekBytes)
			}
			if got := f.audit.actions(); len(got) != before+1 || !strings.HasPrefix(got[len(got)-1], "web.csrf:refused") {
				t.Fatalf("audit: %v", got)
			}
		})
	}

	// An honest upload, the token first as the page's form sends it, is
	// read whole (this one is cut short: 400 for its form, not 403).
	honest, ct4 := multipartHead("csrf", se.csrf, "credential", "c1", "level", "B-B", "document", "")
	if code, read := post("/my/sign", true, honest, ct4, size); code == http.StatusForbidden || read != size {
		t.Fatalf("an honest upload of 11 MiB: %d after %d bytes, want it read whole and not 403", code, read)
	}
	// A small one passes the token check (the page then refuses it for
	// its credential, which the fixture's API does not list: web.sign).
	small, ct5 := multipartHead("csrf", se.csrf, "credential", "c1", "level", "B-B", "document", "")
	small = append(small, []byte("\r\n--"+strings.TrimPrefix(ct5, "multipart/form-data; boundary=")+"--\r\n")...)
	post("/my/sign", true, small, ct5, int64(len(small)))
	if got := f.audit.actions(); strings.HasPrefix(got[len(got)-1], "web.csrf") {
		t.Fatalf("an honest small upload refused for its token: %v", got)
	}
}

// failingBody is a request body that gives head, then fails as a client
// that went away mid-body does.
type failingBody struct{ head *bytes.Reader }

func (b *failingBody) Read(p []byte) (int, error) {
	if b.head.Len() > 0 {
		return b.head.Read(p)
	}
	return 0, io.ErrUnexpectedEOF
}

func (b *failingBody) Close() error { return nil }

// TestLargeURLEncodedFormAsBefore: the CSRF peek put the body back in a
// reader of its own, so the form parse no longer found the portal's
// http.MaxBytesReader and cut a url-encoded body at its own 10 MB: an
// honest form over 10 MB but within the portal's bound (MaxUploadBytes
// plus 1 MiB) was refused 400, and one over the bound was answered 400
// instead of 413 err.too_large. Both are answered as before the peek.
func TestLargeURLEncodedFormAsBefore(t *testing.T) {
	f := newFixture(t)
	who := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
	post := func(n int64) int {
		se, cookie := f.p.ses.login(nil, who, "citizen") // each its own: the first one signs out
		r := httptest.NewRequest(http.MethodPost, "/my/logout?lang=en", nil)
		r.Body, r.ContentLength = &countingBody{head: []byte("csrf=" + se.csrf + "&x="), n: n}, n
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: cookieName(false), Value: cookie})
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w.Code
	}
	limit := f.p.o.MaxUploadBytes + 1<<20
	if code := post(limit + 1<<20); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a url-encoded form over the bound: %d, want 413", code)
	}
	if code := post(limit - 1<<10); code == http.StatusBadRequest || code == http.StatusForbidden || code == http.StatusRequestEntityTooLarge {
		t.Fatalf("an honest url-encoded form of %d bytes (the bound is %d): %d, want it taken", limit-1<<10, limit, code)
	}
}

// TestFormReadFailureIsNotCSRF: a form whose body could not be read (the
// client went away mid-body) had no token for the peek, and was refused
// 403 and audited as a forgery (web.csrf), where the form parse answered it
// 400 before the peek. It is answered 400 again, and nothing is audited.
func TestFormReadFailureIsNotCSRF(t *testing.T) {
	f := newFixture(t)
	who := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
	se, cookie := f.p.ses.login(nil, who, "citizen")
	before := len(f.audit.actions())
	r := httptest.NewRequest(http.MethodPost, "/my/logout?lang=en", nil)
	r.Body, r.ContentLength = &failingBody{head: bytes.NewReader([]byte("csrf=" + se.csrf + "&x=abc"))}, 4096
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: cookieName(false), Value: cookie})
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("a form cut short by the client: %d, want 400", w.Code)
	}
	if got := f.audit.actions(); len(got) != before {
		t.Fatalf("audit: %v, want nothing new", got[before:])
	}
}
