package portal

import (
	"net/url"
	"strings"
	"testing"
)

// The officer's issue form starts with the deployment's country (passed in
// at wiring), not Oman's; a portal told none leaves the field empty.
func TestIssueFormDefaultsToTheDeploymentsCountry(t *testing.T) {
	for country, want := range map[string]string{"AE": `name="country" value="AE"`, "": `name="country" value=""`} {
		f := newFixtureWith(t, func(o *Options) { o.Country = country })
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang=en", nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		body := o.do("GET", "/ra/issue?lang=en", nil).Body.String()
		if !strings.Contains(body, want) {
			t.Errorf("country %q: the issue form lacks %s:\n%s", country, want, body)
		}
	}
}
