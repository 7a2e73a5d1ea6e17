package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

func TestCivilNumberIn(t *testing.T) {
	for _, c := range []struct{ country, in, want string }{
		{"OM", "IDCOM-12345678", "12345678"},
		{"OM", "IDCAE-12345678", ""},
		{"AE", "IDCAE-784-1990", "784-1990"},
		{"", "IDCAE-12345678", "12345678"}, // no country known: any country
		{"OM", "IDCOM-", ""},
		{"OM", "PASOM-123", ""},
	} {
		if got := CivilNumberIn(c.country, c.in); got != c.want {
			t.Errorf("CivilNumberIn(%q, %q) = %q, want %q", c.country, c.in, got, c.want)
		}
	}
}

// A client certificate whose national identity number is of another
// country than the deployment's is a principal without a civil number and
// without a role: it owns no certificate of the citizen with the same
// number, and Require refuses it with a 403 naming why.
func TestMTLSForeignCivilNumber(t *testing.T) {
	ca := newTestCA(t, "Bridge CA")
	newAuth := func(country string) *Authenticator {
		a, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}},
			Options{Logger: quietLogger(), CheckCertificate: acceptAll, Country: country})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	om := newAuth("OM")
	foreign := ca.issue(t, pkix.Name{CommonName: "Visitor", SerialNumber: "IDCAE-12345678", Country: []string{"AE"}})
	res, err := callWithCert(t, mtlsServer(t, om), &foreign, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.CivilNumber != "" || res.Subject != "IDCAE-12345678" || len(res.Roles) != 0 {
		t.Fatalf("foreign citizen: %+v", res)
	}
	citizen := ca.issue(t, pkix.Name{CommonName: "Aisha", SerialNumber: "IDCOM-12345678", Country: []string{"OM"}})
	if res, err = callWithCert(t, mtlsServer(t, om), &citizen, ""); err != nil || res.status != 200 || res.CivilNumber != "12345678" {
		t.Fatalf("own citizen: %+v %v", res, err)
	}

	// Ownership, with the principals the authenticator makes.
	principal := func(a *Authenticator, leaf *x509.Certificate) *Principal {
		t.Helper()
		p, _, err := a.authenticateCertificate([][]*x509.Certificate{{leaf, ca.cert}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := principal(om, foreign.Leaf); p.OwnsCertificate(citizen.Leaf) || p.OwnsCertificate(foreign.Leaf) {
		t.Fatal("IDCAE-12345678 owns a certificate in an OM deployment")
	}
	own := principal(om, citizen.Leaf)
	if !own.OwnsCertificate(citizen.Leaf) || own.CivilCountry != "OM" {
		t.Fatalf("IDCOM-12345678 does not own their own certificate: %+v", own)
	}
	if own.OwnsCertificate(foreign.Leaf) {
		t.Fatal("citizen 12345678 of OM owns IDCAE-12345678")
	}

	// A deployment whose country is not known keeps the country-blind match.
	if p := principal(newAuth(""), foreign.Leaf); p.CivilNumber != "12345678" || !p.OwnsCertificate(citizen.Leaf) {
		t.Fatalf("no country: %+v", p)
	}
	// Require: 403, audited with the serialNumber and the reason.
	rec := &memAudit{}
	guarded, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}},
		Options{Logger: quietLogger(), CheckCertificate: acceptAll, Country: "OM", Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	h := guarded.Require(policies.ActionSign)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a foreign national identity number was let through")
	}))
	r := httptest.NewRequest(http.MethodPost, "/api/v1/sign", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign.Leaf}, VerifiedChains: [][]*x509.Certificate{{foreign.Leaf, ca.cert}}}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	entries := rec.take()
	if w.Code != http.StatusForbidden || w.Header().Get("Content-Type") != "application/problem+json" || len(entries) != 1 ||
		entries[0].Actor != "IDCAE-12345678" || entries[0].Outcome != "refused" || details(t, entries[0])["reason"] != "national identity number of another country" {
		t.Fatalf("Require: %d %s %+v", w.Code, w.Body, entries)
	}
	if _, err := New(Config{}, Options{Country: "Oman"}); err == nil {
		t.Fatal("country Oman accepted")
	}
}

// A bearer token's citizen is of the deployment's country.
func TestTokenCitizenCountry(t *testing.T) {
	f := newFixture(t, nil)
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks}}},
		Options{Logger: quietLogger(), Now: f.clock.Now, Country: "OM"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.verifyToken(t.Context(), f.sign(t, f.claims("12345678", "citizen")))
	if err != nil {
		t.Fatal(err)
	}
	foreign := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCAE-12345678"}}
	own := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCOM-12345678"}}
	if p.CivilCountry != "OM" || p.OwnsCertificate(foreign) || !p.OwnsCertificate(own) {
		t.Fatalf("token citizen %+v", p)
	}
}

// A web page's signed-in citizen (WithSession, e.g. the portal's OIDC
// login, which names the civil number only) is of the deployment's
// country: they own IDCOM-<number> and not IDCAE-<number>.
func TestSessionCitizenCountry(t *testing.T) {
	a, err := New(Config{}, Options{Logger: quietLogger(), Country: "OM"})
	if err != nil {
		t.Fatal(err)
	}
	var seen *Principal
	h := a.Require(policies.ActionRevokeCertificate)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	citizen := &Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}, Method: "oidc"}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/certificates/01/revoke", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(WithSession(r.Context(), citizen)))
	if w.Code != http.StatusNoContent || seen == nil {
		t.Fatalf("citizen session: %d %s", w.Code, w.Body)
	}
	foreign := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCAE-12345678"}}
	own := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCOM-12345678"}}
	if seen.CivilCountry != "OM" || seen.OwnsCertificate(foreign) || !seen.OwnsCertificate(own) {
		t.Fatalf("session citizen %+v owns IDCAE-12345678 or not IDCOM-12345678", seen)
	}
	if citizen.CivilCountry != "" {
		t.Fatal("the page's principal was changed")
	}
}
