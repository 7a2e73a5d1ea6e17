package ceremony

import (
	"errors"
	"testing"
)

func TestParseRootSubject(t *testing.T) {
	s, err := ParseRootSubject([]byte(`{"commonName":"Root","organizationName":"O","organizationIdentifier":"NTROM-1","country":"OM"}`))
	if err != nil || s.CommonName != "Root" || s.Country != "OM" {
		t.Fatalf("ParseRootSubject = %+v, %v", s, err)
	}
	for _, bad := range []string{`{"commonName":"Root","country":"OM","extra":1}`, `{"commonName":"","country":"OM"}`, `{"commonName":"Root","country":"XX1"}`, `[]`} {
		if _, err := ParseRootSubject([]byte(bad)); err == nil {
			t.Errorf("ParseRootSubject(%s) accepted", bad)
		}
	}
}

func TestParseRootKeyType(t *testing.T) {
	for in, want := range map[string]string{"ec-p384": "ec-p384", "rsa4096": "rsa-4096", "rsa-4096": "rsa-4096"} {
		if got, err := ParseRootKeyType(in); err != nil || got != want {
			t.Errorf("ParseRootKeyType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseRootKeyType("ec-p256"); !errors.Is(err, ErrRootKeyType) {
		t.Errorf("ParseRootKeyType(ec-p256) = %v, want ErrRootKeyType", err)
	}
}
