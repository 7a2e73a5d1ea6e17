package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"testing"
)

// fixedP384Key is a deterministic P-384 key for the fuzz corpus.
func fixedP384Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d := make([]byte, 48)
	d[47], d[0] = 7, 0x42
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newVerifierFor(t testing.TB, pub *ecdsa.PublicKey) *p384Verifier {
	t.Helper()
	v, err := newP384Verifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// agree fails the test when the table verifier and crypto/ecdsa disagree,
// and returns their common verdict.
func agree(t testing.TB, v *p384Verifier, pub *ecdsa.PublicKey, digest, sig []byte) bool {
	t.Helper()
	want := ecdsa.VerifyASN1(pub, digest, sig)
	if got := v.verifyASN1(digest, sig); got != want {
		t.Fatalf("table verifier says %v, crypto/ecdsa %v (digest %x, sig %x)", got, want, digest, sig)
	}
	return want
}

func sigOf(t testing.TB, r, s *big.Int) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestP384VerifierAgreesWithCryptoECDSA(t *testing.T) {
	for range 3 {
		k := p384(t)
		pub := &k.PublicKey
		v := newVerifierFor(t, pub)
		other := p384(t)
		n := pub.Curve.Params().N
		for i := range 40 {
			var digest []byte
			switch i % 4 {
			case 0:
				d := sha512.Sum384([]byte{byte(i)})
				digest = d[:]
			case 1:
				d := sha256.Sum256([]byte{byte(i)})
				digest = d[:]
			case 2:
				d := sha512.Sum512([]byte{byte(i)})
				digest = d[:]
			case 3:
				digest = make([]byte, 48) // e = 0
			}
			sig, err := ecdsa.SignASN1(rand.Reader, k, digest)
			if err != nil {
				t.Fatal(err)
			}
			if !agree(t, v, pub, digest, sig) {
				t.Fatal("a valid signature was refused")
			}
			var rs struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(sig, &rs); err != nil {
				t.Fatal(err)
			}
			// s and n-s are both valid (ECDSA has no low-s rule).
			if !agree(t, v, pub, digest, sigOf(t, rs.R, new(big.Int).Sub(n, rs.S))) {
				t.Fatal("the n-s twin of a valid signature was refused")
			}
			bad := bytes.Clone(digest)
			bad[i%len(bad)] ^= 1 << (i % 8)
			otherSig, _ := ecdsa.SignASN1(rand.Reader, other, digest)
			for name, c := range map[string]struct{ d, s []byte }{
				"digest changed":   {bad, sig},
				"other key":        {digest, otherSig},
				"r and s swapped":  {digest, sigOf(t, rs.S, rs.R)},
				"r+1":              {digest, sigOf(t, new(big.Int).Add(rs.R, big.NewInt(1)), rs.S)},
				"s+1":              {digest, sigOf(t, rs.R, new(big.Int).Add(rs.S, big.NewInt(1)))},
				"r+n":              {digest, sigOf(t, new(big.Int).Add(rs.R, n), rs.S)},
				"s+n":              {digest, sigOf(t, rs.R, new(big.Int).Add(rs.S, n))},
				"r=0":              {digest, sigOf(t, big.NewInt(0), rs.S)},
				"s=0":              {digest, sigOf(t, rs.R, big.NewInt(0))},
				"r=n":              {digest, sigOf(t, n, rs.S)},
				"s=n":              {digest, sigOf(t, rs.R, n)},
				"r negative":       {digest, sigOf(t, new(big.Int).Neg(rs.R), rs.S)},
				"trailing byte":    {digest, append(bytes.Clone(sig), 0)},
				"truncated":        {digest, sig[:len(sig)-1]},
				"empty":            {digest, nil},
				"empty digest":     {nil, sig},
				"digest one short": {digest[:len(digest)-1], sig},
			} {
				// A changed digest that gives the same e (SHA-512 is cut to
				// 48 bytes; a zero digest stays zero when shortened) is valid.
				sameE := digestInt(c.d, n).Cmp(digestInt(digest, n)) == 0
				if agree(t, v, pub, c.d, c.s) && !(sameE && bytes.Equal(c.s, sig)) {
					t.Fatalf("%s: accepted", name)
				}
			}
		}
	}
}

// digestInt is ECDSA's e for P-384: the leftmost 384 bits, modulo n.
func digestInt(d []byte, n *big.Int) *big.Int {
	if len(d) > 48 {
		d = d[:48]
	}
	e := new(big.Int).SetBytes(d)
	return e.Mod(e, n)
}

func TestP384VerifierRefusesOtherCurves(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newP384Verifier(&k.PublicKey); err == nil {
		t.Fatal("a P-256 key was accepted")
	}
}

func TestScalarWindow(t *testing.T) {
	var k [48]byte
	for i := range k {
		k[i] = byte(i*37 + 11)
	}
	want := new(big.Int).SetBytes(k[:])
	got := new(big.Int)
	for i := 0; i*p384Window < 384; i++ {
		d := new(big.Int).SetUint64(uint64(scalarWindow(&k, i*p384Window)))
		got.Add(got, d.Lsh(d, uint(i*p384Window)))
	}
	if got.Cmp(want) != 0 {
		t.Fatalf("windows sum to %x, want %x", got, want)
	}
}

// FuzzP384Verify checks the table verifier against crypto/ecdsa on
// arbitrary digests and signature encodings (and on mutations of a valid
// signature, seeded in testdata/fuzz/FuzzP384Verify).
func FuzzP384Verify(f *testing.F) {
	k := fixedP384Key(f)
	d := sha512.Sum384([]byte("thiqa"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(d[:], sig)
	f.Add(d[:], []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	v := newVerifierFor(f, &k.PublicKey)
	f.Fuzz(func(t *testing.T, digest, sig []byte) {
		agree(t, v, &k.PublicKey, digest, sig)
	})
}

func BenchmarkVerifyP384(b *testing.B) {
	k := p384(b)
	d := sha512.Sum384([]byte("tbs"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifierFor(b, &k.PublicKey)
	b.Run("tables", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !v.verifyASN1(d[:], sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("crypto-ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("build-tables", func(b *testing.B) {
		for b.Loop() {
			newVerifierFor(b, &k.PublicKey)
		}
	})
}

// TestP384VerifierRefusesTrailingData checks the signature is parsed as
// strictly as crypto/ecdsa parses it: an element after s inside the
// SEQUENCE, or bytes after the SEQUENCE, make a valid (r, s) invalid.
func TestP384VerifierRefusesTrailingData(t *testing.T) {
	k := fixedP384Key(t)
	d := sha512.Sum384([]byte("thiqa"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	if sig[1] >= 0x7e {
		t.Fatalf("signature length %d needs the long form; the test builds short forms only", sig[1])
	}
	v := newVerifierFor(t, &k.PublicKey)
	if !v.verifyASN1(d[:], sig) {
		t.Fatal("valid signature refused")
	}
	inside := append([]byte{0x30, sig[1] + 2}, sig[2:]...)
	inside = append(inside, 0x05, 0x00) // NULL after s, inside the SEQUENCE
	after := append(append([]byte(nil), sig...), 0x00)
	for name, bad := range map[string][]byte{"inside": inside, "after": after} {
		if v.verifyASN1(d[:], bad) || wellFormedECDSA(&k.PublicKey, bad) {
			t.Errorf("trailing data %s the SEQUENCE accepted", name)
		}
		agree(t, v, &k.PublicKey, d[:], bad)
	}
}
