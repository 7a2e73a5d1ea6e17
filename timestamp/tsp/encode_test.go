package tsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The per-token encoders (direct DER appenders, the signed-attributes
// template) must give exactly the bytes of the straightforward cryptobyte
// encodings below, which they replaced.

func refAccuracy(b *cryptobyte.Builder, d time.Duration) {
	secs := int64(d / time.Second)
	millis := int64(d % time.Second / time.Millisecond)
	micros := int64(d % time.Millisecond / time.Microsecond)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if secs > 0 {
			b.AddASN1Int64(secs)
		}
		if millis > 0 {
			b.AddASN1Int64WithTag(millis, cbasn1.Tag(0).ContextSpecific())
		}
		if micros > 0 {
			b.AddASN1Int64WithTag(micros, cbasn1.Tag(1).ContextSpecific())
		}
	})
}

func refMarshalTSTInfo(t *TSTInfo) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1ObjectIdentifier(t.Policy)
		if t.MessageImprint.Raw != nil {
			b.AddBytes(t.MessageImprint.Raw)
		} else {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(t.MessageImprint.HashAlgorithm)
					if t.MessageImprint.HashParams != nil {
						b.AddBytes(t.MessageImprint.HashParams)
					}
				})
				b.AddASN1OctetString(t.MessageImprint.HashedMessage)
			})
		}
		b.AddASN1BigInt(t.SerialNumber)
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes(AppendGeneralizedTime(make([]byte, 0, 20), t.GenTime))
		})
		if t.Accuracy > 0 {
			refAccuracy(b, t.Accuracy)
		}
		if t.Ordering {
			b.AddASN1Boolean(true)
		}
		if t.Nonce != nil {
			b.AddASN1BigInt(t.Nonce)
		}
		if t.TSAName != nil {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddBytes(t.TSAName)
				})
			})
		}
		if len(t.Extensions) > 0 {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				addExtensions(b, t.Extensions)
			})
		}
	})
	return b.Bytes()
}

func refSign(s *TokenSigner, rand io.Reader, tstInfo []byte, includeCerts, withChain bool, signingTime time.Time) ([]byte, error) {
	h := s.hash.New()
	h.Write(tstInfo)
	signed, err := s.signedAttributes(h.Sum(nil), signingTime)
	if err != nil {
		return nil, err
	}
	h = s.hash.New()
	h.Write(signed)
	sig, err := s.signer.Sign(rand, h.Sum(nil), s.signerOpts)
	if err != nil {
		return nil, err
	}
	body := cryptobyte.String(signed)
	var attrContent cryptobyte.String
	body.ReadASN1(&attrContent, cbasn1.SET)
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDSignedData)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Int64(3)
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(s.digestAlg) })
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(OIDTSTInfo)
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1OctetString(tstInfo)
						})
					})
					if includeCerts {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							if withChain {
								b.AddBytes(s.chainCerts)
							} else {
								b.AddBytes(s.unitCert)
							}
						})
					}
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1Int64(1)
							b.AddBytes(s.sid)
							b.AddBytes(s.digestAlg)
							b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddBytes(attrContent)
							})
							b.AddBytes(s.sigAlg)
							b.AddASN1OctetString(sig)
						})
					})
				})
			})
		})
	})
}

// fixedSigner wraps a key but signs deterministically (a hash of the
// digest, of the key's usual signature size), so two encodings compare.
type fixedSigner struct {
	crypto.Signer
	size int
}

func (f fixedSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	var out []byte
	for i := byte(0); len(out) < f.size; i++ {
		s := sha256.Sum256(append([]byte{i}, digest...))
		out = append(out, s[:]...)
	}
	return out[:f.size], nil
}

func testCert(t *testing.T, pub crypto.PublicKey, serial *big.Int) *x509.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "unit"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func randInt(r *mrand.Rand, bytes int, neg bool) *big.Int {
	b := make([]byte, bytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	n := new(big.Int).SetBytes(b)
	if neg {
		n.Neg(n)
	}
	return n
}

func TestTSTInfoEncodingMatchesReference(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	policies := []asn1.ObjectIdentifier{OIDETSIBestPracticesPolicy, {1, 2, 3}, {2, 999, 1 << 30, 0}}
	for i := range 2000 {
		info := &TSTInfo{
			Policy:       policies[i%len(policies)],
			SerialNumber: new(big.Int).Add(randInt(r, r.IntN(25), false), big.NewInt(1)),
			GenTime:      base.Add(time.Duration(r.Int64N(int64(100 * 365 * 24 * time.Hour)))),
			Accuracy:     time.Duration(r.Int64N(int64(3 * time.Second))),
			Ordering:     i%7 == 0,
		}
		if i%3 == 0 {
			info.Accuracy = 0
		}
		imprint := make([]byte, []int{32, 48, 64}[i%3])
		copy(imprint, randInt(r, 64, false).Bytes())
		info.MessageImprint = MessageImprint{HashAlgorithm: OIDSHA256, HashedMessage: imprint}
		if i%5 == 0 {
			info.MessageImprint.HashParams = []byte{0x05, 0x00}
		}
		if i%2 == 0 {
			raw, _ := refMarshalMI(info.MessageImprint)
			info.MessageImprint.Raw = raw
		}
		if i%4 != 0 {
			info.Nonce = randInt(r, r.IntN(66), i%11 == 0)
		}
		if i%6 == 0 {
			info.TSAName = bytes.Repeat([]byte{0x30, 0x00}, r.IntN(100))
		}
		if i%9 == 0 {
			info.Extensions = []Extension{QualifiedStatementExtension(), {ID: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{1, 2}}}
		}
		got, err := info.Marshal()
		want, werr := refMarshalTSTInfo(info)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d %+v:\n got %x (%v)\nwant %x (%v)", i, info, got, err, want, werr)
		}
	}
	if _, err := (&TSTInfo{Policy: asn1.ObjectIdentifier{3, 1}, SerialNumber: big.NewInt(1)}).Marshal(); err == nil {
		t.Error("policy 3.1 encoded")
	}
}

func refMarshalMI(mi MessageImprint) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(mi.HashAlgorithm)
				if mi.HashParams != nil {
					b.AddBytes(mi.HashParams)
				}
			})
			b.AddASN1OctetString(mi.HashedMessage)
		})
	})
}

func TestSignMatchesReference(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	chainKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	chain := []*x509.Certificate{testCert(t, chainKey.Public(), big.NewInt(7)), testCert(t, chainKey.Public(), big.NewInt(8))}
	times := []time.Time{
		time.Date(2026, 11, 22, 12, 0, 0, 999e6, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600)),
		time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), // GeneralizedTime: the general path
		time.Date(1949, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, k := range []struct {
		name   string
		signer crypto.Signer
		size   int
		opts   SignerOptions
	}{
		{"p256", ec256, 71, SignerOptions{}},
		{"p256-signing-time", ec256, 72, SignerOptions{SigningTime: true}},
		{"p384", ec384, 103, SignerOptions{}},
		{"p256-sha512", ec256, 70, SignerOptions{Hash: crypto.SHA512, SigningTime: true}},
		{"rsa", rsaKey, 256, SignerOptions{}},
		{"rsa-pss", rsaKey, 256, SignerOptions{PSS: true, SigningTime: true}},
	} {
		for _, serial := range []*big.Int{big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 159)} {
			cert := testCert(t, k.signer.Public(), serial)
			s, err := NewTokenSigner(fixedSigner{k.signer, k.size}, cert, chain, k.opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.attrs == nil {
				t.Fatalf("%s: no signed-attributes template", k.name)
			}
			for i, tm := range times {
				for _, tst := range [][]byte{bytes.Repeat([]byte{0x42}, 100), bytes.Repeat([]byte{0x43}, 300)} {
					for _, certs := range [][2]bool{{false, false}, {true, false}, {true, true}} {
						got, err := s.Sign(nil, tst, certs[0], certs[1], tm)
						want, werr := refSign(s, nil, tst, certs[0], certs[1], tm)
						if err != nil || werr != nil || !bytes.Equal(got, want) {
							t.Fatalf("%s time %d certs %v: differs (%v, %v)\n got %x\nwant %x", k.name, i, certs, err, werr, got, want)
						}
					}
				}
			}
		}
	}
}

func TestGrantedResponseMatchesReference(t *testing.T) {
	for _, n := range []int{0, 10, 120, 200, 300, 70000} {
		tok := slices.Repeat([]byte{0x30}, n)
		got, err := (&Response{Status: StatusInfo{Status: StatusGranted, FailInfo: NoFailInfo}, Token: tok}).Marshal()
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addStatusInfo(b, StatusInfo{Status: StatusGranted, FailInfo: NoFailInfo})
			b.AddBytes(tok)
		})
		want, werr := b.Bytes()
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("token of %d bytes: %x, want %x", n, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
}

// TestGrantedInPlaceMatchesMarshal: the envelope written in front of a
// token in place is the one Marshal builds, whatever the length encoding
// and the spare headroom; too little headroom is refused.
func TestGrantedInPlaceMatchesMarshal(t *testing.T) {
	for _, n := range []int{0, 10, 120, 122, 123, 200, 300, 65530, 70000} {
		tok := slices.Repeat([]byte{0x30}, n)
		want, err := (&Response{Status: StatusInfo{Status: StatusGranted, FailInfo: NoFailInfo}, Token: tok}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, headroom := range []int{GrantedHeadroom, GrantedHeadroom + 9} {
			b := append(slices.Repeat([]byte{0xee}, headroom), tok...)
			got, err := EncodeGrantedInPlace(b, headroom)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("token of %d bytes, headroom %d: %x, %v; want %x", n, headroom, got[:min(len(got), 12)], err, want[:min(len(want), 12)])
			}
		}
	}
	if _, err := EncodeGrantedInPlace(make([]byte, 20), GrantedHeadroom-1); err == nil {
		t.Fatal("too little headroom was accepted")
	}
	if _, err := EncodeGrantedInPlace(make([]byte, 5), GrantedHeadroom); err == nil {
		t.Fatal("headroom beyond the buffer was accepted")
	}
}

func BenchmarkTokenEncoding(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	t := &testing.T{}
	cert := testCert(t, key.Public(), big.NewInt(99))
	s, err := NewTokenSigner(fixedSigner{key, 71}, cert, []*x509.Certificate{cert}, SignerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	imprint := bytes.Repeat([]byte{1}, 32)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		info := TSTInfo{Policy: OIDETSIBestPracticesPolicy, MessageImprint: MessageImprint{HashAlgorithm: OIDSHA256, HashedMessage: imprint},
			SerialNumber: big.NewInt(int64(i + 1)), GenTime: time.Now(), Accuracy: time.Second, Nonce: big.NewInt(int64(i) << 40)}
		tst, err := info.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		tok, err := s.Sign(nil, tst, true, true, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (&Response{Status: StatusInfo{Status: StatusGranted, FailInfo: NoFailInfo}, Token: tok}).Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
