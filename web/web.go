// Package web serves the verification page for relying parties: a person
// uploads a signed PDF and sees the verdict per signature, with the signer
// and the level, in Arabic and English. The page, its script and its style
// are embedded in the binary; it loads nothing from elsewhere and sends a
// Content-Security-Policy that forbids it.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every response: only this origin's
// script and style, requests only to this origin, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Options configure the page.
type Options struct {
	// APIPath is where the page POSTs the PDF (POST /api/v1/verify).
	APIPath string
	// MaxUploadBytes is shown to the user and checked before uploading.
	MaxUploadBytes int64
	// NotFound answers a path under /verify/ that is none of the page's
	// (a browser's mistyped address gets the site's 404 page);
	// http.NotFound when nil.
	NotFound http.HandlerFunc
}

// Handler serves the page at /verify and its assets at /verify/app.js and
// /verify/app.css; anything else under /verify/ is 404 (Options.NotFound).
func Handler(o Options) http.Handler {
	if o.NotFound == nil {
		o.NotFound = http.NotFound
	}
	page := mustRender(o)
	js, _ := static.ReadFile("static/app.js")
	css, _ := static.ReadFile("static/app.css")
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		var ctype string
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "/verify":
			body, ctype = page, "text/html; charset=utf-8"
		case "/verify/app.js":
			body, ctype = js, "text/javascript; charset=utf-8"
		case "/verify/app.css":
			body, ctype = css, "text/css; charset=utf-8"
		default:
			o.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", ctype)
		http.ServeContent(w, r, "", started, bytes.NewReader(body))
	})
}

// mustRender fills the page template; the template is embedded and
// checked by the package's tests, so a failure here is a build defect.
func mustRender(o Options) []byte {
	t := template.Must(template.ParseFS(static, "static/verify.html"))
	var b bytes.Buffer
	if err := t.Execute(&b, struct {
		API      string
		MaxBytes int64
		MaxMiB   int64
	}{o.APIPath, o.MaxUploadBytes, o.MaxUploadBytes >> 20}); err != nil {
		panic("web: rendering the embedded page: " + err.Error())
	}
	return b.Bytes()
}
