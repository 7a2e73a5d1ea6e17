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

// TestOfficerIssuerRevoked: when the CA answers 409 issuing-ca-revoked (the
// root CRL revokes the issuing CA), the console says so in the page's
// language (the root revoked it, nothing was issued, the CA operators must
// roll it over) with the CA's detail, instead of a bare "refused: 409".
func TestOfficerIssuerRevoked(t *testing.T) {
	// The wire value, pinned here and in package ca's tests.
	if problemIssuerRevoked != "urn:thiqa:problem:issuing-ca-revoked" {
		t.Fatalf("problem type %q differs from the CA's", problemIssuerRevoked)
	}
	f := newFixture(t)
	const detail = "issuing CA citizen (generation 1, citizen, certificate serial 01) was revoked by the root on 2026-12-01T00:00:00Z (reason keyCompromise): ... thiqa ca rollover --name citizen ..."
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"type":"` + problemIssuerRevoked + `","title":"Issuing CA revoked by the root","status":409,"detail":"` + detail + `"}`))
	}
	for lang, want := range map[string]string{
		"en": "the root has revoked it (its key may be compromised), so nothing it signs would be trusted",
		"ar": "ألغت جهة التصديق الجذرية شهادتها",
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/issue?lang="+lang, nil))
		w := o.do("POST", "/ra/issue?lang="+lang, url.Values{"csrf": {token}, "profile": {"citizen-signing"}, "givenName": {"Aisha"}})
		body := w.Body.String()
		if w.Code != http.StatusConflict || !strings.Contains(body, want) || !strings.Contains(body, "thiqa ca rollover --name citizen") {
			t.Fatalf("%s: %d, want the revoked-CA message:\n%s", lang, w.Code, body)
		}
	}
}
