package cades

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"
)

// referenceAddTimestamp and referenceMarshal are the encoding/asn1
// encodings Marshal replaced; the output must stay byte-identical.
func referenceAddTimestamp(s *Signature, token []byte) error {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(token, &ci); err != nil || len(rest) > 0 || !ci.ContentType.Equal(OIDSignedData) {
		return errors.New("not SignedData")
	}
	a, err := asn1.Marshal(attribute{Type: OIDTimeStampToken, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: token}})
	if err != nil {
		return err
	}
	s.unsigned = append(s.unsigned, a)
	return nil
}

func referenceMarshal(s *Signature) ([]byte, error) {
	info := s.info
	if len(s.unsigned) > 0 {
		set, err := setOf(s.unsigned)
		if err != nil {
			return nil, err
		}
		info.UnsignedAttrs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: set[headerLen(set):]}
	}
	si, err := asn1.Marshal(info)
	if err != nil {
		return nil, err
	}
	var certs []byte
	for _, c := range s.chain {
		certs = append(certs, c.Raw...)
	}
	sdDER, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{info.DigestAlgorithm},
		EncapContentInfo: encapContentInfo{EContentType: OIDData},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos:      []asn1.RawValue{{FullBytes: si}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		ContentInfo asn1.ObjectIdentifier
		Content     asn1.RawValue
	}{OIDSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
}

func TestMarshalMatchesReference(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "marshal CA"}, NotBefore: now,
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca := cert(t, caT, caT, caKey.Public(), caKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Serials of several DER lengths, with and without a leading zero byte.
	serials := []*big.Int{big.NewInt(127), big.NewInt(128), new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(32768)}
	var token []byte
	for i, tc := range []struct {
		key  crypto.Signer
		opts Options
	}{{p256, Options{}}, {rk, Options{}}, {rk, Options{PSS: true, Hash: crypto.SHA512}}, {p256, Options{Hash: crypto.SHA384}}} {
		leaf := cert(t, &x509.Certificate{SerialNumber: serials[i], Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now, NotAfter: now.Add(time.Hour)},
			ca, tc.key.Public(), caKey)
		h := tc.opts.Hash
		if h == 0 {
			h = crypto.SHA256
		}
		for stamps := 0; stamps <= 2; stamps++ {
			sig, err := Sign(rand.Reader, make([]byte, h.Size()), tc.key, []*x509.Certificate{leaf, ca}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			ref := *sig
			for k := 0; k < stamps; k++ {
				if token == nil {
					t.Fatal("no token yet")
				}
				tok := bytes.Clone(token)
				if k == 1 { // a second, different token
					other, _ := sig.Marshal()
					tok = other
				}
				if err := sig.AddTimestamp(tok); err != nil {
					t.Fatal(err)
				}
				if err := referenceAddTimestamp(&ref, tok); err != nil {
					t.Fatal(err)
				}
			}
			got, err := sig.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want, err := referenceMarshal(&ref)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d, %d time-stamps: Marshal differs from the encoding/asn1 reference", i, stamps)
			}
			if token == nil {
				token = got // a SignedData ContentInfo stands in for a token
			}
		}
	}
	sig, _ := Sign(rand.Reader, make([]byte, 32), p256, []*x509.Certificate{ca}, Options{})
	for _, bad := range [][]byte{nil, {0x30, 0x00}, append(append([]byte(nil), token...), 0), token[:len(token)-1]} {
		if err := sig.AddTimestamp(bad); err == nil {
			t.Fatalf("AddTimestamp accepted %d bad bytes", len(bad))
		}
	}
}
