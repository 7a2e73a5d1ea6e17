package pemcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestParseTakesExactlyOneCertificate(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	one := Encode(der)
	if c, err := Parse(append(one, "\n  \n"...)); err != nil || c.SerialNumber.Int64() != 7 {
		t.Fatalf("one certificate: %v", err)
	}
	for name, raw := range map[string][]byte{
		"two certificates": append(append([]byte{}, one...), one...),
		"trailing text":    append(append([]byte{}, one...), "x"...),
		"not PEM":          []byte("certificate"),
		"another block":    []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		if _, err := Parse(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
