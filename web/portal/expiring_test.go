package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOfficerIssuerExpiring: when the CA answers that the issuing CA can
// no longer issue the profile, the console says so in the page's language
// (what is wrong, that nothing was issued, that the CA operators must roll
// the CA over) with the CA's detail, instead of a bare "refused: 500".
func TestOfficerIssuerExpiring(t *testing.T) {
	// The wire value, pinned here and in package ca's tests.
	if problemIssuerExpiring != "urn:thiqa:problem:issuing-ca-expiring" {
		t.Fatalf("problem type %q differs from the CA's", problemIssuerExpiring)
	}
	f := newFixture(t)
	const detail = "issuing CA citizen (generation 1, citizen) expires on 2027-01-01T00:00:00Z: ... thiqa ca rollover --name citizen ..."
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"` + problemIssuerExpiring + `","title":"Issuing CA at the end of its validity","status":500,"detail":"` + detail + `"}`))
	}
	for lang, want := range map[string]string{
		"en": "The CA operators must roll the issuing CA over to a new key (thiqa ca rollover)",
		"ar": "على مشغّلي جهة التصديق تجديد جهة التصديق المُصدِرة بمفتاح جديد (thiqa ca rollover)",
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/issue?lang="+lang, nil))
		w := o.do("POST", "/ra/issue?lang="+lang, url.Values{"csrf": {token}, "profile": {"citizen-signing"}, "givenName": {"Aisha"}})
		body := w.Body.String()
		if w.Code != http.StatusInternalServerError || !strings.Contains(body, want) || !strings.Contains(body, "thiqa ca rollover --name citizen") {
			t.Fatalf("%s: %d, want the end-of-validity message:\n%s", lang, w.Code, body)
		}
	}
}
