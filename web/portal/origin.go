package portal

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ActionPlainHTTP records a form of the portal or the officer console
// refused because it was sent over plain http to publicBaseURL's host
// (refusePlainForm).
const ActionPlainHTTP = "web.plain-http"

// checkOrigin checks Options.Origin and Options.RedirectHosts: an origin
// is scheme://host[:port] (http or https, no path, query or fragment),
// and redirect hosts make sense only with one.
func checkOrigin(o Options) error {
	if o.Origin == "" {
		if len(o.RedirectHosts) > 0 {
			return fmt.Errorf("portal: redirect hosts %v without an origin to redirect to", o.RedirectHosts)
		}
		return nil
	}
	u, err := url.Parse(o.Origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(o.Origin, "/") {
		return fmt.Errorf("portal: origin %q: want scheme://host[:port]", o.Origin)
	}
	for _, h := range o.RedirectHosts {
		if h == "" || sameHost(h, u.Host) {
			return fmt.Errorf("portal: redirect host %q: want a host other than the origin's", h)
		}
	}
	return nil
}

// sameHost compares two Host values (host[:port]) of a plain-http
// address: case-insensitive, a trailing dot ignored, and no port the same
// as :80.
func sameHost(a, b string) bool {
	return normalHost(a) == normalHost(b)
}

func normalHost(h string) string {
	h = strings.ToLower(h)
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), "80"
	}
	return net.JoinHostPort(strings.TrimSuffix(host, "."), port)
}

// onOrigin sends a browser that reached the citizen portal or the officer
// console by one of Options.RedirectHosts to the same path and query on
// Options.Origin (307: temporary, so no browser remembers it past a change
// of configuration). The session cookie is bound to the origin's host and
// the digital ID returns citizens there: a session started on another
// host would lose the sign-in. Only GET and HEAD are redirected: any other
// method is a form, whose fields (a PIN, an activation code, an officer's
// token) have just crossed the network in the clear; it is refused
// (refusePlainForm), never resent to the origin, so a form posted over
// http never acts. Other hosts (the origin's own, a load balancer's
// health check, an address that names the node) are served as they come,
// so a proxy that rewrites Host cannot make a redirect loop.
func (p *Portal) onOrigin(next http.Handler) http.Handler {
	if p.o.Origin == "" || len(p.o.RedirectHosts) == 0 {
		return next
	}
	origin, err := url.Parse(p.o.Origin)
	if err != nil { // checked by New
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.redirectHost(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			p.refusePlainForm(w, r)
			return
		}
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, onOriginURL(origin, r.URL), http.StatusTemporaryRedirect)
	})
}

// redirectHost reports whether host (a Host header) is one of
// Options.RedirectHosts.
func (p *Portal) redirectHost(host string) bool {
	for _, h := range p.o.RedirectHosts {
		if sameHost(host, h) {
			return true
		}
	}
	return false
}

// onOriginURL is u's path and query on origin. The scheme and the
// authority are origin's alone: u's own scheme, host, user or opaque
// part (an absolute-form request line) are dropped, and its path is only
// ever a path on origin's host.
func onOriginURL(origin, u *url.URL) string {
	to := url.URL{Scheme: origin.Scheme, Host: origin.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if !strings.HasPrefix(to.Path, "/") {
		to.Path, to.RawPath = "/"+to.Path, ""
	}
	return to.String()
}

// refusePlainForm answers a form posted to /my/… or /ra/… on a redirect
// host (publicBaseURL's plain-http host) with 403 and the error page:
// nothing is done, the browser is not sent on with the form, and the page
// tells the person to change the PIN or get a new code or token, as what
// they typed crossed the network unencrypted. The refusal is audited
// (ActionPlainHTTP, the path, never the fields) before the answer, and
// the operator gets a warning in the log; without its record the answer
// is the service's failure (failRecorded), still without acting.
func (p *Portal) refusePlainForm(w http.ResponseWriter, r *http.Request) {
	p.log.WarnContext(r.Context(), "a form of the portal was sent over plain http to publicBaseURL's host and refused; what it carried crossed the network unencrypted",
		"method", r.Method, "host", r.Host, "path", r.URL.Path, "origin", p.o.Origin)
	aerr := p.auditRefusal(r, nil, ActionPlainHTTP, "a form sent over plain http to publicBaseURL's host "+r.Host+": refused, not resent to "+p.o.Origin+"; what it carried crossed the network unencrypted")
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close") // the form's body is not read
	explicit := r.URL.Query().Get("lang")
	if c, err := r.Cookie("thiqa-lang"); err == nil && !isLanguage(explicit) {
		explicit = c.Value
	}
	v := &view{p: p, w: w, r: r, lang: pickLanguage(explicit, r.Header.Get("Accept-Language"))}
	if aerr != nil {
		v.failRecorded(aerr, http.StatusForbidden, "err.plain_http")
		return
	}
	back := p.o.Origin + "/my/"
	switch {
	case strings.HasPrefix(r.URL.Path, "/ra/"):
		back = p.o.Origin + "/ra/"
	case strings.HasPrefix(r.URL.Path, "/my/approve"): // the phone's page
		back = p.o.Origin + "/my/approve"
	}
	v.renderStatus(http.StatusForbidden, "error", "err.title", map[string]any{"Message": v.t("err.plain_http"), "Back": back})
}
