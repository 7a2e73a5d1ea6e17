package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOfficerIssueBadSubjectInPageLanguage: a refused subject (a civil
// number with letters, an empty name) names each field in the page's
// language with what to type, marks those fields, keeps what was typed
// and shows none of the CA's English reasons ("subject field ...: must
// be ...", as the console showed on its Arabic page too).
func TestOfficerIssueBadSubjectInPageLanguage(t *testing.T) {
	// The wire value, pinned here and in package ca's tests.
	if problemBadSubject != "urn:thiqa:problem:bad-subject" {
		t.Fatalf("problem type %q differs from the CA's", problemBadSubject)
	}
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"urn:thiqa:problem:bad-subject","title":"Invalid subject field","status":400,` +
			`"detail":"subject field \"givenName\": missing; subject field \"civilNumber\": must be 6 to 12 digits",` +
			`"errors":["givenName","civilNumber"],"invalid-params":[{"name":"givenName","reason":"missing"},{"name":"civilNumber","reason":"must be 6 to 12 digits"}]}`))
	}
	for lang, want := range map[string][]string{
		"en": {"Nothing was issued.", "Given name: required", "Civil number: digits only"},
		"ar": {"لم يصدر شيء.", "الاسم الأول: مطلوب", "الرقم المدني: أرقام فقط"},
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/issue?lang="+lang, nil))
		w := o.do("POST", "/ra/issue?lang="+lang, url.Values{"csrf": {token}, "profile": {"citizen-signing"}, "givenName": {""},
			"surname": {"Al Balushi"}, "civilNumber": {"12AB"}, "country": {"OM"}})
		body := w.Body.String()
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d", lang, w.Code)
		}
		for _, s := range append(want, `id="f-civilNumber" name="civilNumber" value="12AB"`, `value="Al Balushi"`,
			`name="givenName" value="" maxlength="128" aria-invalid="true" aria-describedby="error"`) {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the refused form lacks %q", lang, s)
			}
		}
		for _, s := range []string{"subject field", "must be", "missing", `name="surname" value="Al Balushi" maxlength="128" aria-invalid`} {
			if strings.Contains(body, s) {
				t.Errorf("%s: the refused form shows %q:\n%s", lang, s, body)
			}
		}
	}
}

// TestOfficerSearchBadTermsInPageLanguage: a civil number with letters
// or a one-letter name is refused in the page's language and keeps what
// was typed; the civil number's search answered "No certificate matches"
// (the citizen seemed not to exist), the name's an English API error. The
// search still goes to the API, which audits it with its query.
func TestOfficerSearchBadTermsInPageLanguage(t *testing.T) {
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"certificates":[]}`))
	}
	for _, c := range []struct{ lang, query, want, kept string }{
		{"en", "civilNumber=12AB", "A civil number has digits only", `value="12AB"`},
		{"ar", "civilNumber=12AB", "الرقم المدني أرقام فقط", `value="12AB"`},
		{"ar", "name=A", "اكتب حرفين من الاسم على الأقل", `name="name" value="A"`},
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+c.lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		before := len(f.calls)
		w := o.do("GET", "/ra/search?lang="+c.lang+"&"+c.query, nil)
		body := w.Body.String()
		if w.Code != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, c.kept) || strings.Contains(body, `id="no-results"`) {
			t.Errorf("%s %s: %d\n%s", c.lang, c.query, w.Code, body)
		}
		if calls := strings.Join(f.calls[before:], " "); !strings.Contains(calls, "GET /api/v1/certificates") {
			t.Errorf("%s %s: the API (which audits the search) was not asked: %q", c.lang, c.query, calls)
		}
	}
}

// TestOfficerIssueBadSubjectNamesEveryField: a refused field the form
// does not have is still named (by its code), with the form's own fields
// in the page's language; it was left out, so the officer corrected the
// rest and was refused again.
func TestOfficerIssueBadSubjectNamesEveryField(t *testing.T) {
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"urn:thiqa:problem:bad-subject","title":"Invalid subject field","status":400,` +
			`"errors":["pseudonym","givenName"]}`))
	}
	for lang, want := range map[string]string{
		"en": "Nothing was issued. Correct these details: pseudonym: not accepted; Given name: required.",
		"ar": "pseudonym: غير مقبول؛ الاسم الأول: مطلوب.",
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/issue?lang="+lang, nil))
		w := o.do("POST", "/ra/issue?lang="+lang, url.Values{"csrf": {token}, "profile": {"citizen-signing"}, "givenName": {""},
			"surname": {"Al Balushi"}, "civilNumber": {"12345678"}, "country": {"OM"}})
		if body := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d, the refused form lacks %q:\n%s", lang, w.Code, want, body)
		}
	}
}
