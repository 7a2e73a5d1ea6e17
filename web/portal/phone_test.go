package portal

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// phoneFixture is a portal whose fake API lists one pending login (with
// its code unless match) and records the approvals sent; a wrong code is
// refused as the provider refuses it.
func phoneFixture(t *testing.T, match bool) (*fixture, *client, *[]map[string]string) {
	t.Helper()
	f := newFixture(t)
	var sent []map[string]string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oidc/mobile/sessions":
			code := `"verificationCode":"4821",`
			if match {
				code = ""
			}
			_, _ = w.Write([]byte(`[{"session":"sess-1",` + code + `"clientID":"portal-1","clientName":"Tax portal","expires":"2026-12-03T10:05:00Z",` +
				`"shares":[{"en":"your civil number","ar":"رقمك المدني"},{"en":"how and when you logged in","ar":"طريقة تسجيل دخولك ووقته"}]}]`))
		case "/oidc/mobile/approve":
			var in map[string]string
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &in)
			sent = append(sent, in)
			if in["verificationCode"] != "4821" {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"type":"urn:thiqa:problem:wrong-verification-code","status":403,"title":"Login refused","detail":"the provider's words, which the page does not read"}`))
				return
			}
			_, _ = w.Write([]byte(`{"status":"approved"}`))
		case "/oidc/mobile/deny-all":
			sent = append(sent, map[string]string{"denyAll": r.Method})
			_, _ = w.Write([]byte(`{"status":"denied","denied":1}`))
		}
	}
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	if w := c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("phone sign-in: %d", w.Code)
	}
	return f, c, &sent
}

// TestPhonePageNumberMatching: when the provider's list carries no codes
// (identity.mobile.numberMatching) the phone page showed an empty code
// and sent an empty one, so no login could be approved. It now asks for
// the code of the other screen (labelled, described), sends what was
// typed (Arabic digits made ASCII), refuses what is not digits at the
// field without spending the login's one try, and says a wrong code
// cancelled the sign-in, in both languages.
func TestPhonePageNumberMatching(t *testing.T) {
	_, c, sent := phoneFixture(t, true)
	w := c.do("GET", "/my/approve?lang=en", nil)
	body := w.Body.String()
	for _, want := range []string{`<label for="code-sess-1">Code shown on that screen</label>`, `id="code-sess-1" name="code"`,
		`aria-describedby="type-code-sess-1"`, `id="type-code-sess-1">Type the code shown`, `name="match" value="1"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("the number-matching form lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `data-code=`) || strings.Contains(body, `name="code" value=`) {
		t.Fatalf("the page shows or carries a code:\n%s", body)
	}
	token := csrf(t, w)

	// Not digits: the page again (400), the error tied to the field, nothing sent.
	w = c.do("POST", "/my/approve", url.Values{"csrf": {token}, "session": {"sess-1"}, "match": {"1"}, "code": {"48a1"}, "pin": {"135790"}})
	body = w.Body.String()
	if w.Code != http.StatusBadRequest || len(*sent) != 0 || !strings.Contains(body, "<title>Error: ") ||
		!strings.Contains(body, `role="alert" id="error">Type the code of digits`) ||
		!strings.Contains(body, `aria-invalid="true" aria-describedby="error type-code-sess-1"`) {
		t.Fatalf("a malformed code: %d, %d sent\n%s", w.Code, len(*sent), body)
	}

	// Typed with an Arabic keyboard: sent as ASCII digits, approved.
	w = c.do("POST", "/my/approve", url.Values{"csrf": {token}, "session": {"sess-1"}, "match": {"1"}, "code": {" ٤٨٢١ "}, "pin": {"135790"}})
	if w.Code != http.StatusSeeOther || len(*sent) != 1 || (*sent)[0]["verificationCode"] != "4821" || (*sent)[0]["session"] != "sess-1" {
		t.Fatalf("the typed code: %d %v", w.Code, *sent)
	}
	if body := c.do("GET", "/my/approve?lang=en", nil).Body.String(); !strings.Contains(body, "Approved.") {
		t.Fatalf("after the approval:\n%s", body)
	}

	// A wrong code: the provider cancels the login; the page says so.
	for lang, want := range map[string]string{"en": "so it is cancelled", "ar": "لذا أُلغي"} {
		c.do("POST", "/my/approve", url.Values{"csrf": {token}, "session": {"sess-1"}, "match": {"1"}, "code": {"1111"}, "pin": {"135790"}})
		if body := c.do("GET", "/my/approve?lang="+lang, nil).Body.String(); !strings.Contains(body, want) {
			t.Fatalf("%s: a wrong code:\n%s", lang, body)
		}
	}
}

// TestPhonePageWithoutNumberMatching: with codes in the list the page
// shows each and sends it back, as before.
func TestPhonePageWithoutNumberMatching(t *testing.T) {
	_, c, sent := phoneFixture(t, false)
	w := c.do("GET", "/my/approve?lang=en", nil)
	body := w.Body.String()
	if !strings.Contains(body, `data-code="4821">4821</p>`) || !strings.Contains(body, `name="code" value="4821"`) || strings.Contains(body, `name="match"`) {
		t.Fatalf("the page without number matching:\n%s", body)
	}
	w = c.do("POST", "/my/approve", url.Values{"csrf": {csrf(t, w)}, "session": {"sess-1"}, "code": {"4821"}, "pin": {"135790"}})
	if w.Code != http.StatusSeeOther || len(*sent) != 1 || (*sent)[0]["verificationCode"] != "4821" {
		t.Fatalf("approval: %d %v", w.Code, *sent)
	}
}

// TestPhonePageDenyAll: someone who knows the citizen's civil number can
// keep logins pending for it, which under number matching the citizen
// could neither approve nor clear. The page offers one labelled button,
// tied to its explanation, that denies them all (POST
// /oidc/mobile/deny-all as the citizen) and says so, in both languages;
// with nothing pending there is no button.
func TestPhonePageDenyAll(t *testing.T) {
	for lang, want := range map[string][2]string{
		"en": {">Deny all pending sign-ins</button>", "All pending sign-ins were denied."},
		"ar": {">رفض جميع طلبات الدخول المعلّقة</button>", "رُفضت جميع طلبات الدخول المعلّقة."},
	} {
		_, c, sent := phoneFixture(t, true)
		w := c.do("GET", "/my/approve?lang="+lang, nil)
		body := w.Body.String()
		if !strings.Contains(body, `<form method="post" action="/my/approve/deny-all" id="deny-all">`) || !strings.Contains(body, want[0]) ||
			!strings.Contains(body, `aria-describedby="deny-all-hint"`) || !strings.Contains(body, `id="deny-all-hint"`) {
			t.Fatalf("%s: the page lacks the deny-all button:\n%s", lang, body)
		}
		w = c.do("POST", "/my/approve/deny-all", url.Values{"csrf": {csrf(t, w)}})
		if w.Code != http.StatusSeeOther || len(*sent) != 1 || (*sent)[0]["denyAll"] != http.MethodPost {
			t.Fatalf("%s: deny-all: %d %v", lang, w.Code, *sent)
		}
		if body := c.do("GET", "/my/approve?lang="+lang, nil).Body.String(); !strings.Contains(body, want[1]) {
			t.Fatalf("%s: after deny-all:\n%s", lang, body)
		}
		if w := c.do("POST", "/my/approve/deny-all", url.Values{"csrf": {"wrong"}}); w.Code != http.StatusForbidden || len(*sent) != 1 {
			t.Fatalf("%s: deny-all without the CSRF token: %d, %d sent", lang, w.Code, len(*sent))
		}
	}
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}})
	if body := c.do("GET", "/my/approve?lang=en", nil).Body.String(); strings.Contains(body, "deny-all") || !strings.Contains(body, `id="none-pending"`) {
		t.Fatalf("nothing pending, yet a deny-all button:\n%s", body)
	}
}

// TestPhonePageSaysWhatApprovingGives: the page named only who asks; it
// now lists, in the page's language and tied to its label, what approving
// gives the portal (the list's shares).
func TestPhonePageSaysWhatApprovingGives(t *testing.T) {
	_, c, _ := phoneFixture(t, false)
	for lang, want := range map[string][]string{
		"en": {"If you approve, it receives:", "<li>your civil number</li><li>how and when you logged in</li>"},
		"ar": {"عند موافقتك يحصل على:", "<li>رقمك المدني</li><li>طريقة تسجيل دخولك ووقته</li>"},
	} {
		body := c.do("GET", "/my/approve?lang="+lang, nil).Body.String()
		for _, s := range append(want, `<p id="shares-sess-1">`, `aria-labelledby="shares-sess-1"`) {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the phone page does not say %q:\n%s", lang, s, body)
			}
		}
	}
}
