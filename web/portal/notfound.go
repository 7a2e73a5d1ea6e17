package portal

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Wants reports whether the error pages answer r in place of the server's
// plain-text 404 and 405 (serve.ErrorPages): a browser asking for HTML,
// for a path outside the protocols' prefixes: the paths whose answers
// belong to a protocol (the API's problems, OCSP, the TSA, CRLs, EST, CMP,
// OpenID Connect, CSC) keep the protocol's answer, never a page.
func (p *Portal) Wants(r *http.Request) bool {
	for _, pre := range [...]string{"/api/", "/.well-known/", "/oidc/", "/csc/", "/ocsp", "/tsa", "/crl/", "/certs/"} {
		if strings.HasPrefix(r.URL.Path, pre) {
			return false
		}
	}
	return acceptsHTML(r.Header.Values("Accept"))
}

// acceptsHTML reports whether the Accept header lists text/html (or
// application/xhtml+xml) with a quality above zero: what browsers send
// when they open a page. A missing header, */* alone or an API client's
// application/json does not.
func acceptsHTML(accept []string) bool {
	for _, line := range accept {
		for _, part := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "text/html" && mt != "application/xhtml+xml") {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// ServeError answers a person's browser that asked for a path nothing
// serves (404), or with a method the path does not take (405, whose Allow
// header is already set), with a page in the portal's look: what went
// wrong in the reader's language and in the other one, and the way back
// to the front page and the verification page. Under /my/ and /ra/ it
// shows the portal's navigation for that area.
func (p *Portal) ServeError(w http.ResponseWriter, r *http.Request, status int) {
	v, ok := p.open(w, r)
	if !ok {
		return
	}
	title, text := "notfound.title", "notfound.text"
	if status == http.StatusMethodNotAllowed {
		title, text = "badmethod.title", "badmethod.text"
	}
	other := Languages[0]
	if v.lang == other {
		other = Languages[1]
	}
	otherDir := "ltr"
	if other == "ar" {
		otherDir = "rtl"
	}
	verify := p.o.Links.Verify
	v.renderStatus(status, "notfound", title, map[string]any{
		"Heading": v.t(title), "Message": v.t(text), "Verify": verify,
		"Other": map[string]string{
			"Lang": other, "Dir": otherDir,
			"Heading": p.cat.text(other, title), "Message": p.cat.text(other, text),
			"Home": p.cat.text(other, "notfound.home"), "VerifyLabel": p.cat.text(other, "notfound.verify"),
		},
	})
}
