package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A refused sign-in says so in the title first, announces its message and
// ties it to the field (WCAG 3.3.1, 4.1.3); the empty form does not.
func TestErrorsAreAnnouncedAndTied(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ lang, prefix string }{{"en", "Error: "}, {"ar", "خطأ: "}} {
		c := f.client()
		w := c.do("GET", "/ra/?lang="+tc.lang, nil)
		body := w.Body.String()
		if strings.Contains(body, "<title>"+tc.prefix) || strings.Contains(body, "aria-invalid") || !strings.Contains(body, `aria-describedby="token-hint"`) {
			t.Fatalf("%s: the empty sign-in form:\n%s", tc.lang, body)
		}
		w = c.do("POST", "/ra/login", url.Values{"csrf": {csrf(t, w)}, "token": {"not a token"}})
		body = w.Body.String()
		for _, want := range []string{"<title>" + tc.prefix, `role="alert" id="error"`, `aria-describedby="error token-hint" aria-invalid="true"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: a refused sign-in lacks %q:\n%s", tc.lang, want, body)
			}
		}
	}
}

// The phone page waiting for a sign-in does not reload itself (it did
// every 5 s): each reload threw a screen reader's place back to the top.
func TestPhonePageDoesNotReloadItself(t *testing.T) {
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}})
	w := c.do("GET", "/my/approve?lang=en", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="none-pending"`) {
		t.Fatalf("the phone page: %d\n%s", w.Code, w.Body.String())
	}
	if strings.Contains(strings.ToLower(w.Body.String()), "http-equiv=\"refresh\"") || w.Header().Get("Refresh") != "" {
		t.Fatalf("the phone page reloads itself:\n%s", w.Body.String())
	}
}
