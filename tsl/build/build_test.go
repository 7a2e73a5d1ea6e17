package build

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/tsl"
)

// TestBuildOptionsAndP384: options that cannot make a valid list are
// refused before anything is signed; a P-384 key signs with ECDSA-SHA384
// and the list verifies.
func TestBuildOptionsAndP384(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signer"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	good := Options{Sequence: 1, Territory: "OM", Operator: "Thiqa", Provider: "Thiqa", IssueDate: now, NextUpdate: now.Add(time.Hour),
		Signer: k, Certificate: cert, Services: []Service{{Type: tsl.SvcTypeCAQC, Name: "CA", Certificates: []*x509.Certificate{cert}, Status: tsl.StatusGranted, Since: now}}}
	raw, err := Build(good)
	if err != nil {
		t.Fatal(err)
	}
	if r := tsl.Check(raw, tsl.CheckOptions{Signers: []*x509.Certificate{cert}}); !r.Passed() || r.List.Version != 6 {
		t.Fatalf("P-384 list: %s %v", r.Indication, r.Errors)
	}
	for name, mod := range map[string]func(*Options){
		"version 4":      func(o *Options) { o.Version = 4 },
		"sequence 0":     func(o *Options) { o.Sequence = 0 },
		"territory":      func(o *Options) { o.Territory = "Oman" },
		"country":        func(o *Options) { o.Country = "Oman" },
		"no next update": func(o *Options) { o.NextUpdate = o.IssueDate },
		"no signer":      func(o *Options) { o.Signer = nil },
		"no services":    func(o *Options) { o.Services = nil },
		"service no cert": func(o *Options) {
			o.Services = []Service{{Type: tsl.SvcTypeCAQC, Name: "x", Status: tsl.StatusGranted}}
		},
	} {
		o := good
		mod(&o)
		if _, err := Build(o); !errors.Is(err, ErrOptions) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
