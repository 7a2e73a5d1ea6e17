package selfsigned

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"reflect"
	"testing"
)

// TestName: the organisation and country come from the root when it has
// them; without a root (or without them) the organisation is the default
// and no country is named.
func TestName(t *testing.T) {
	cn := func(org string) string { return org + " CMP server" }
	for _, tc := range []struct {
		root *x509.Certificate
		want pkix.Name
	}{
		{nil, pkix.Name{CommonName: "Thiqa CMP server", Organization: []string{"Thiqa"}}},
		{&x509.Certificate{}, pkix.Name{CommonName: "Thiqa CMP server", Organization: []string{"Thiqa"}}},
		{&x509.Certificate{Subject: pkix.Name{Organization: []string{"ITA"}, Country: []string{"OM"}}},
			pkix.Name{CommonName: "ITA CMP server", Organization: []string{"ITA"}, Country: []string{"OM"}}},
		{&x509.Certificate{Subject: pkix.Name{Country: []string{"OM"}}},
			pkix.Name{CommonName: "Thiqa CMP server", Organization: []string{"Thiqa"}, Country: []string{"OM"}}},
	} {
		if got := Name(tc.root, cn); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Name(%v) = %+v, want %+v", tc.root, got, tc.want)
		}
	}
}

// TestSerial: serials are positive, at most 128 bits, and differ.
func TestSerial(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := Serial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %v: want positive and at most 128 bits", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %v twice", s)
		}
		seen[s.String()] = true
	}
}
