package sigalg

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
)

func TestSignVerifiesWithCryptoX509(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	tbs := []byte("to be signed")
	for name, k := range map[string]struct {
		s    crypto.Signer
		want x509.SignatureAlgorithm
	}{
		"p256": {ec256, x509.ECDSAWithSHA256}, "p384": {ec384, x509.ECDSAWithSHA384},
		"rsa": {rk, x509.SHA256WithRSA}, "ed25519": {ed, x509.PureEd25519},
	} {
		a, err := For(k.s.Public())
		if err != nil || a.X509() != k.want {
			t.Fatalf("%s: For = %v, %v; want %v", name, a.X509(), err, k.want)
		}
		sig, err := a.Sign(k.s, tbs)
		if err != nil {
			t.Fatalf("%s: Sign: %v", name, err)
		}
		cert := &x509.Certificate{PublicKey: k.s.Public()}
		if err := cert.CheckSignature(a.X509(), tbs, sig); err != nil {
			t.Fatalf("%s: signature does not verify: %v", name, err)
		}
		tk, err := ThrowawayKey(k.s.Public())
		if err != nil {
			t.Fatalf("%s: ThrowawayKey: %v", name, err)
		}
		if b, _ := For(tk.Public()); b.X509() != k.want {
			t.Fatalf("%s: throwaway key of another kind", name)
		}
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := For(&p224.PublicKey); err == nil {
		t.Fatal("P-224 accepted")
	}
}
