package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOfficerIssuedActivationCode: when the CA's answer carries the first
// PIN's activation code (signing.pinPolicy.firstPINActivation), the
// officer's page shows it once, in both languages, to hand to the holder;
// an answer without one shows no code.
func TestOfficerIssuedActivationCode(t *testing.T) {
	f := newFixture(t)
	code := ""
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		extra := ""
		if code != "" {
			extra = `,"activationCode":"` + code + `","activationCodeExpiresAt":"2030-01-02T03:04:05Z"`
		}
		_, _ = w.Write([]byte(`{"serial":"0a1b","certificate":"","chain":[],"credentialID":"cred-1"` + extra + `}`))
	}
	for _, c := range []struct{ lang, code, want string }{
		{"en", "K7QM-2XWD-9HPA", "Give this code to the holder, in person."},
		{"ar", "K7QM-2XWD-9HPA", "أعطِ هذا الرمز لصاحب الشهادة شخصيًا."},
		{"en", "", ""},
	} {
		code = c.code
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+c.lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/issue?lang="+c.lang, nil))
		w := o.do("POST", "/ra/issue?lang="+c.lang, url.Values{"csrf": {token}, "profile": {"citizen-signing"}, "givenName": {"Aisha"}})
		body := w.Body.String()
		if w.Code != http.StatusCreated || !strings.Contains(body, "cred-1") {
			t.Fatalf("%s: %d\n%s", c.lang, w.Code, body)
		}
		shown := strings.Contains(body, `id="activation-code"`)
		if shown != (c.code != "") || (c.code != "" && (!strings.Contains(body, c.code) || !strings.Contains(body, c.want))) {
			t.Fatalf("%s, code %q: the page shows a code: %v\n%s", c.lang, c.code, shown, body)
		}
	}
}

// TestActivityFirstPINCode: the record of a new credential's first-PIN
// activation code (credential.pin.reset with firstPIN) reads, in both
// languages, as a code issued for the first signing PIN, not as a PIN
// reset; an officer's reset still reads as a reset.
func TestActivityFirstPINCode(t *testing.T) {
	f, c, _ := activityFixture(t)
	answer := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entries":[
{"seq":20,"time":"2026-12-03T09:00:00Z","action":"credential.pin.reset","outcome":"success","description":"PIN reset (an activation code issued)","by":"registration-officer","credential":"cred-a"},
{"seq":10,"time":"2026-12-02T09:00:00Z","action":"credential.pin.reset","outcome":"success","description":"Activation code issued for your first signing PIN","by":"registration-officer","credential":"cred-a","firstPIN":true}]}`))
	}
	for _, l := range []struct{ lang, first, reset string }{
		{"en", "Activation code issued for your first signing PIN", "PIN reset (an activation code issued)"},
		{"ar", "إصدار رمز تفعيل لرمزك السري الأول للتوقيع", "إعادة تعيين الرمز السري (إصدار رمز تفعيل)"},
	} {
		w := c.do("GET", "/my/activity?lang="+l.lang, nil)
		body := w.Body.String()
		row := func(seq string) string {
			_, after, _ := strings.Cut(body, `data-seq="`+seq+`"`)
			before, _, _ := strings.Cut(after, "</tr>")
			return before
		}
		if w.Code != http.StatusOK || !strings.Contains(row("10"), l.first) || strings.Contains(row("10"), l.reset) || !strings.Contains(row("20"), l.reset) {
			t.Fatalf("%s: %d\nfirst PIN: %s\nreset: %s", l.lang, w.Code, row("10"), row("20"))
		}
	}
}

// TestFirstPINRefusalWords: when the signing service refuses a first PIN
// set without an activation code (signing.pinPolicy.firstPINActivation:
// 409 of type first-pin-needs-activation-code), the citizen's page says,
// in their language, that the first PIN is set with an officer's code,
// not an English API error; the PIN went to the service once, with the
// bearer token alone (the portal sets no PIN by itself).
func TestFirstPINRefusalWords(t *testing.T) {
	f, c, _ := activityFixture(t)
	answer := f.answer
	var pinCalls []string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/v1/credentials/cred-1/pin") {
			answer(w, r)
			return
		}
		pinCalls = append(pinCalls, r.URL.Path)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"type":"urn:thiqa:problem:first-pin-needs-activation-code","status":409,"detail":"this service sets the first signing PIN with an activation code only: a registration officer issues one (POST /api/v1/credentials/{id}/pin/reset), then set the PIN with it (POST /api/v1/credentials/{id}/pin/activate)"}`))
	}
	for _, l := range []struct{ lang, want string }{
		{"en", "Your first signing PIN is set with an activation code: a registration officer gives you one."},
		{"ar", "يُعيَّن رمزك السري الأول للتوقيع برمز تفعيل يعطيك إياه موظف التسجيل."},
	} {
		token := csrf(t, c.do("GET", "/my/?lang="+l.lang, nil))
		w := c.do("POST", "/my/pin", url.Values{"csrf": {token}, "credential": {"cred-1"}, "pin": {"583920"}, "pin2": {"583920"}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%s: the form's answer %d\n%s", l.lang, w.Code, w.Body)
		}
		body := c.do("GET", "/my/?lang="+l.lang, nil).Body.String()
		if !strings.Contains(body, `id="flash">`+l.want) || strings.Contains(body, "pin/reset") {
			t.Fatalf("%s: the page after the refusal:\n%s", l.lang, body)
		}
	}
	if len(pinCalls) != 2 || pinCalls[0] != "/api/v1/credentials/cred-1/pin" {
		t.Fatalf("calls to the PIN endpoints: %q", pinCalls)
	}
}

// TestActivationCodeRefusalWords: a wrong or expired activation code is
// told as such in the citizen's language (it read "You are not allowed to
// do this", which blames the citizen's rights, not the code).
func TestActivationCodeRefusalWords(t *testing.T) {
	f, c, _ := activityFixture(t)
	answer := f.answer
	var status int
	var typ string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/credentials" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"credentials":[{"credentialID":"cred-1","kind":"signing","status":"valid","pin":"activation"}]}`))
			return
		}
		if r.URL.Path != "/api/v1/credentials/cred-1/pin/activate" {
			answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"type":"` + typ + `","status":403,"detail":"pin: wrong activation code (4 tries left)"}`))
	}
	for _, l := range []struct {
		status          int
		typ, lang, want string
	}{
		{http.StatusForbidden, problemWrongActivation, "en", "That activation code is not right. Nothing was changed."},
		{http.StatusForbidden, problemWrongActivation, "ar", "رمز التفعيل هذا غير صحيح. لم يتغيّر شيء."},
		{http.StatusForbidden, problemActivationVoid, "en", "That activation code is not right, and that was the last try: it no longer works."},
		{http.StatusForbidden, problemActivationVoid, "ar", "رمز التفعيل هذا غير صحيح، وكانت هذه المحاولة الأخيرة: لم يعد يعمل."},
		{http.StatusGone, problemActivationExpired, "en", "That activation code has expired. Nothing was changed. Ask a registration officer for a new one."},
		{http.StatusGone, problemActivationExpired, "ar", "انتهت صلاحية رمز التفعيل هذا."},
	} {
		status, typ = l.status, l.typ
		token := csrf(t, c.do("GET", "/my/?lang="+l.lang, nil))
		w := c.do("POST", "/my/pin/activate", url.Values{"csrf": {token}, "credential": {"cred-1"}, "code": {"7Q4K-9ZP2-AAAA"}, "pin": {"583920"}, "pin2": {"583920"}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%s: the form's answer %d\n%s", l.lang, w.Code, w.Body)
		}
		body := c.do("GET", "/my/?lang="+l.lang, nil).Body.String()
		if !strings.Contains(body, `id="flash">`+l.want) {
			t.Errorf("%s %s: the page after the refusal:\n%s", l.typ, l.lang, body)
		}
	}
}
