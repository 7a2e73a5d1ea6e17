package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/problem"
)

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(template.FuncMap{"list": func(s ...string) []string { return s }}).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

// pageData is what every template sees.
type pageData struct {
	v       *view
	Lang    string
	Dir     string
	Title   string
	CSRF    string
	Who     *auth.Principal
	Kind    string
	Name    string
	Flash   string
	FlashOK bool
	Area    string // "front", "my" or "ra"
	Path    string
	D       any
	// Failed says the page reports an error (the error page, an error
	// flash, a form shown again with its error): the title says so first,
	// so that it is the first thing a screen reader reads (WCAG 3.3.1).
	Failed bool
}

// T returns a message of the catalogue in the page's language.
func (d *pageData) T(key string) string { return d.v.t(key) }

// Date and Time write t for the page's reader.
func (d *pageData) Date(t time.Time) string { return formatDate(d.Lang, t) }
func (d *pageData) Time(t time.Time) string { return formatTime(d.Lang, t) }

// Num writes an integer in the page's digits.
func (d *pageData) Num(n any) string {
	switch x := n.(type) {
	case int:
		return formatNumber(d.Lang, int64(x))
	case int64:
		return formatNumber(d.Lang, x)
	}
	return fmt.Sprint(n)
}

// LangURL is the current page in language l.
func (d *pageData) LangURL(l string) string {
	q := url.Values{"lang": {l}}
	return d.Path + "?" + q.Encode()
}

// formless are the pages an anonymous visitor sees without a session.
var formless = map[string]bool{"front": true, "error": true, "notfound": true, "my_login": true}

// t returns a message of the catalogue in the view's language.
func (v *view) t(key string) string { return v.p.cat.text(v.lang, key) }

// render answers 200-style with page name.
func (v *view) render(status int, name, titleKey string, data any) {
	v.renderStatus(status, name, titleKey, data)
}

// renderStatus renders page name with the layout.
func (v *view) renderStatus(status int, name, titleKey string, data any) {
	t, ok := v.p.pages[name]
	if !ok {
		http.Error(v.w, "no such page", http.StatusInternalServerError)
		return
	}
	d := &pageData{v: v, Lang: v.lang, Dir: "rtl", Title: v.t(titleKey), D: data, Path: v.r.URL.Path}
	if v.lang != "ar" {
		d.Dir = "ltr"
	}
	switch {
	case strings.HasPrefix(v.r.URL.Path, "/ra/"):
		d.Area = "ra"
	case strings.HasPrefix(v.r.URL.Path, "/my/"):
		d.Area = "my"
	default:
		d.Area = "front"
	}
	if v.se == nil && formless[name] {
		goto render
	}
	v.ensure()
	v.p.ses.locked(func() {
		d.CSRF, d.Who, d.Kind, d.Name = v.se.csrf, v.se.who, v.se.kind, v.se.name
		if v.se.flash != "" {
			if msg, ok := strings.CutPrefix(v.se.flash, "raw:"); ok {
				d.Flash = msg
			} else {
				d.Flash = v.t(v.se.flash)
			}
			d.FlashOK = v.se.flashKind == "ok"
			v.se.flash, v.se.flashKind = "", ""
		}
	})
render:
	d.Failed = name == "error" || name == "notfound" || (d.Flash != "" && !d.FlashOK)
	if m, ok := data.(map[string]any); ok {
		if e, _ := m["Error"].(string); e != "" {
			d.Failed = true
		}
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		v.p.log.ErrorContext(v.r.Context(), "rendering page", "page", name, "err", err)
		http.Error(v.w, "page error", http.StatusInternalServerError)
		return
	}
	v.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	v.w.Header().Set("Content-Language", v.lang)
	problem.RetryLater(v.w.Header(), status) // a 503 page says when to come back
	v.w.WriteHeader(status)
	_, _ = v.w.Write(b.Bytes())
}

// fail answers with the error page showing the message key.
func (v *view) fail(status int, key string) { v.failText(status, v.t(key)) }

// failText answers with the error page showing msg.
func (v *view) failText(status int, msg string) {
	back := "/"
	switch {
	case strings.HasPrefix(v.r.URL.Path, "/ra/"):
		back = "/ra/"
	case strings.HasPrefix(v.r.URL.Path, "/my/approve"):
		back = "/my/approve"
	case strings.HasPrefix(v.r.URL.Path, "/my/"):
		back = "/my/"
	}
	v.renderStatus(status, "error", "err.title", map[string]any{"Message": msg, "Back": back})
}
