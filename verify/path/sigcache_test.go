package path

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

func TestSignatureCacheOnlyRemembersExactSuccesses(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	msg := []byte("to be signed")
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultAlgorithms()
	p.Cache = NewSignatureCache(2)
	alg := x509.ECDSAWithSHA256

	if err := p.VerifySignature(alg, &key.PublicKey, msg, sig); err != nil {
		t.Fatalf("genuine signature: %v", err)
	}
	if p.Cache.Len() != 1 {
		t.Fatalf("cache holds %d, want 1", p.Cache.Len())
	}
	if err := p.VerifySignature(alg, &key.PublicKey, msg, sig); err != nil {
		t.Fatalf("cached genuine signature: %v", err)
	}
	// Another message, another key or a changed signature is checked anew.
	if err := p.VerifySignature(alg, &key.PublicKey, []byte("something else"), sig); err == nil {
		t.Fatal("a cached signature verified another message")
	}
	if err := p.VerifySignature(alg, &other.PublicKey, msg, sig); err == nil {
		t.Fatal("a cached signature verified under another key")
	}
	bad := append([]byte(nil), sig...)
	bad[len(bad)-1] ^= 1
	if err := p.VerifySignature(alg, &key.PublicKey, msg, bad); err == nil {
		t.Fatal("a changed signature verified")
	}
	if p.Cache.Len() != 1 {
		t.Fatalf("failures were cached: %d entries", p.Cache.Len())
	}
	// The policy still applies to a cached signature.
	strict := p
	strict.MinECBits = 384
	if err := strict.VerifySignature(alg, &key.PublicKey, msg, sig); err == nil {
		t.Fatal("the cache bypassed the algorithm policy")
	}
	// Bounded: filling it past max empties it.
	for i := range 3 {
		m := []byte{byte(i)}
		dd := sha256.Sum256(m)
		s, _ := ecdsa.SignASN1(rand.Reader, key, dd[:])
		if err := p.VerifySignature(alg, &key.PublicKey, m, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Cache.Len(); n > 2 {
		t.Fatalf("cache grew to %d beyond its bound 2", n)
	}
}
