package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOfficerHomeExpiringNamesTheHolder: the console's list of
// certificates that expire soon names each holder by their name, as the
// search results and the revocation's confirmation do; it showed the
// subject's raw distinguished name, with the given name and surname as
// OIDs and hex ("2.5.4.42=#1305…"), which no officer can read.
func TestOfficerHomeExpiringNamesTheHolder(t *testing.T) {
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"certificates":[{"serial":"0a1b","ca":"citizen","profile":"citizen-signing",` +
			`"subject":"SERIALNUMBER=IDCOM-12345678,CN=Aisha Al Balushi,C=OM,2.5.4.42=#13054169736861","commonName":"Aisha Al Balushi",` +
			`"status":"valid","notAfter":"2026-12-20T00:00:00Z"}]}`))
	}
	o := f.client()
	token := csrf(t, o.do("GET", "/ra/?lang=en", nil))
	o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
	body := o.do("GET", "/ra/?lang=en", nil).Body.String()
	if !strings.Contains(body, `<a href="/ra/certificate?serial=0a1b"><bdi>Aisha Al Balushi</bdi></a>`) || strings.Contains(body, "2.5.4.42") {
		t.Fatalf("the expiring list:\n%s", body)
	}
}
