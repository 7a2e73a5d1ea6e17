package hierarchy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// The deployment's country is compared with the C of every installed
// certificate of its citizen CA (every generation), else of its root: a
// mismatch is reported once per certificate, naming the file, both
// countries and what to change (nothing in thiqa.yaml when other
// generations agree with it); a CA not made yet reports nothing.
func TestCountryMismatches(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, country ...string) {
		t.Helper()
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name, Country: country},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(CertPath(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Config{CertDir: dir, Country: "AE", Root: CA{Name: "root", Country: "OM"},
		Issuers: []CA{{Name: "citizen", Country: "AE"}, {Name: "organisation", Country: "OM"}}}
	if got := CountryMismatches(c); len(got) != 0 {
		t.Fatalf("before any certificate: %v", got)
	}
	write("root", "OM")
	write("organisation", "OM")
	write("citizen", "OM")
	got := CountryMismatches(c)
	if len(got) != 1 || got[0].Path != CertPath(dir, "citizen") || len(got[0].Agreeing) != 0 {
		t.Fatalf("mismatches %v, want citizen.pem", got)
	}
	for _, w := range []string{"CA citizen the country AE", "names C=OM", "make the CA's country in thiqa.yaml the certificate's C"} {
		if !strings.Contains(got[0].String(), w) {
			t.Errorf("%q lacks %q", got[0], w)
		}
	}
	// Generations that disagree among themselves (the country edited
	// before a rollover): editing thiqa.yaml to the first's C would make
	// the second disagree, so the warning does not advise it.
	write("citizen_2", "AE")
	write("citizen_3")
	got = CountryMismatches(c)
	if len(got) != 2 || got[0].Path != CertPath(dir, "citizen") || got[1].Path != CertPath(dir, "citizen_3") {
		t.Fatalf("mismatches %v, want citizen.pem and citizen_3.pem", got)
	}
	for _, w := range []string{"CA citizen the country AE", "as its certificate(s) " + CertPath(dir, "citizen_2") + " do", "names C=OM",
		"editing thiqa.yaml cannot make them agree"} {
		if !strings.Contains(got[0].String(), w) {
			t.Errorf("%q lacks %q", got[0], w)
		}
	}
	if s := got[0].String(); strings.Contains(s, "make the CA's country in thiqa.yaml") {
		t.Errorf("%q advises an edit that makes citizen_2.pem disagree", s)
	}
	if !strings.Contains(got[1].String(), "names no C") {
		t.Errorf("%q: a certificate without C", got[1])
	}

	// No citizen CA: the root's country is the deployment's.
	c = Config{CertDir: dir, Country: "AE", Root: CA{Name: "root", Country: "AE"}}
	if got := CountryMismatches(c); len(got) != 1 || got[0].CA != "root" {
		t.Fatalf("the root's country: %v", got)
	}
	// What agrees says nothing.
	c = Config{CertDir: dir, Country: "OM", Root: CA{Name: "root", Country: "OM"}}
	if got := CountryMismatches(c); len(got) != 0 {
		t.Fatalf("agreeing: %v", got)
	}
}
