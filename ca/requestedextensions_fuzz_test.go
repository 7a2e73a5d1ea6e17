package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"
)

// FuzzRequestedExtensions (seed corpus in testdata/fuzz) gives checkRequestedExtensions any value for
// each extension an RA may ask for: it never panics, and a value it
// accepts says what the certificate carries, read independently: the
// profile's keyUsage bits, its purposes once each, CA:FALSE without a path
// length (an empty SEQUENCE or cA FALSE alone), the key's identifier.
func FuzzRequestedExtensions(f *testing.F) {
	for _, s := range []struct {
		which byte
		value []byte
	}{
		{0, []byte{0x03, 0x02, 0x07, 0x80}}, {0, []byte{0x03, 0x03, 0x00, 0x80, 0x00}},
		{1, []byte{0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02}}, {1, []byte{0x30, 0x00}},
		{2, []byte{0x30, 0x00}}, {2, []byte{0x30, 0x03, 0x02, 0x01, 0xff}}, {2, []byte{0x30, 0x02, 0x04, 0x00}},
		{3, []byte{0x04, 0x00}}, {5, []byte{0x30, 0x00}},
	} {
		f.Add(s.which, s.value)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ski, _ := subjectKeyID(&k.PublicKey)
	sha1ID, _ := sha1KeyID(&k.PublicKey)
	auth, sign := requestedProfiles()
	ids := []asn1.ObjectIdentifier{oidKeyUsage, oidExtKeyUsage, oidBasicConstraints, oidSKI}
	f.Fuzz(func(t *testing.T, which byte, value []byte) {
		p := auth
		if which&4 != 0 {
			p = sign
		}
		id := ids[int(which&3)]
		if checkRequestedExtensions(p, &k.PublicKey, []pkix.Extension{{Id: id, Value: value}}) != nil {
			return
		}
		switch int(which & 3) {
		case 0:
			var bits asn1.BitString
			if _, err := asn1.Unmarshal(value, &bits); err != nil {
				t.Fatalf("keyUsage %x accepted, unreadable: %v", value, err)
			}
			for i := range max(bits.BitLength, 16) {
				if want := p.KeyUsage&(1<<i) != 0; (bits.At(i) == 1) != want {
					t.Fatalf("keyUsage %x accepted, bit %d differs from profile %s's", value, i, p.Name)
				}
			}
		case 1:
			var asked []asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(value, &asked); err != nil || len(asked) == 0 || len(p.ExtKeyUsage) == 0 {
				t.Fatalf("extKeyUsage %x accepted for profile %s (%v)", value, p.Name, err)
			}
			ext, _, _ := extKeyUsageExtension(p)
			var want []asn1.ObjectIdentifier
			_, _ = asn1.Unmarshal(ext.Value, &want)
			for i, o := range asked {
				if slices.IndexFunc(want, o.Equal) < 0 || slices.IndexFunc(asked, o.Equal) != i || len(asked) != len(want) {
					t.Fatalf("extKeyUsage %v accepted, profile %s's %v", asked, p.Name, want)
				}
			}
		case 2:
			if !bytes.Equal(value, []byte{0x30, 0x00}) && !bytes.Equal(value, []byte{0x30, 0x03, 0x01, 0x01, 0x00}) {
				t.Fatalf("basicConstraints %x accepted, not CA:FALSE alone", value)
			}
		case 3:
			var id []byte
			if _, err := asn1.Unmarshal(value, &id); err != nil || (!bytes.Equal(id, ski) && !bytes.Equal(id, sha1ID)) {
				t.Fatalf("subjectKeyIdentifier %x accepted, not the key's", value)
			}
		}
	})
}
