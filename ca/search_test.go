package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"testing"
)

func TestParseSearch(t *testing.T) {
	for _, c := range []struct {
		q   string
		bad bool
	}{
		{"civilNumber=12345678", false},
		{"organizationIdentifier=NTROM-1234567&status=valid&limit=500", false},
		{"name=Aisha", false},
		{"", true},
		{"status=valid", true},
		{"name=A", true},
		{"civilNumber=1&status=suspended", true},
		{"civilNumber=1&limit=0", true},
		{"civilNumber=1&limit=501", true},
		{"name=%01bell", true},
	} {
		q, _ := url.ParseQuery(c.q)
		if _, bad := ParseSearch(q); (bad != "") != c.bad {
			t.Errorf("ParseSearch(%q): %q", c.q, bad)
		}
	}
}

func TestSearchMatchesExactly(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "Aisha Al Harthy", Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: "IDCOM-12345678"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"},
	}}}
	cert.Subject.CommonName = "Aisha Al Harthy"
	org := &x509.Certificate{Subject: pkix.Name{CommonName: "Ministry of Health Seal", Organization: []string{"Ministry of Health"}, Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "NTROM-1234567"},
	}}}
	for _, c := range []struct {
		q    SearchQuery
		c    *x509.Certificate
		st   string
		want bool
	}{
		{SearchQuery{CivilNumber: "12345678"}, cert, "valid", true},
		{SearchQuery{CivilNumber: "2345678"}, cert, "valid", false}, // a suffix is not the number
		{SearchQuery{CivilNumber: "12345678", Status: "revoked"}, cert, "valid", false},
		{SearchQuery{Name: "harthy"}, cert, "valid", true},
		{SearchQuery{Name: "aisha"}, cert, "revoked", true},
		{SearchQuery{Name: "salim"}, cert, "valid", false},
		{SearchQuery{OrganizationIdentifier: "ntrom-1234567"}, org, "valid", true},
		{SearchQuery{OrganizationIdentifier: "NTROM-123456"}, org, "valid", false},
		{SearchQuery{Name: "health"}, org, "valid", true},
		{SearchQuery{CivilNumber: "12345678"}, org, "valid", false},
	} {
		if got := c.q.matches(c.c, c.st); got != c.want {
			t.Errorf("%+v on %s (%s): %v", c.q, c.c.Subject.CommonName, c.st, got)
		}
	}
}

// FuzzParseSearch: any query either is refused with a reason or gives
// bounded terms, a known status and a limit in range.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{"civilNumber=12345678", "name=%D8%B9%D8%A7%D8%A6%D8%B4%D8%A9&status=valid", "organizationIdentifier=NTROM-1&limit=7", "name=a%25_b", "limit=-1&name=xx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		s, bad := ParseSearch(q)
		if bad != "" {
			return
		}
		if s.Limit < 1 || s.Limit > searchMaxLimit || len(s.Name) > searchMaxTerm || len(s.CivilNumber) > searchMaxTerm {
			t.Fatalf("%q: %+v", raw, s)
		}
		switch s.Status {
		case "", "valid", "revoked", "expired":
		default:
			t.Fatalf("%q: status %q", raw, s.Status)
		}
		_ = s.contains()
	})
}
