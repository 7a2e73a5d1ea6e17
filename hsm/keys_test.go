package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseKeyType(t *testing.T) {
	for _, kt := range []KeyType{ECP256, ECP384, RSA2048, RSA3072, RSA4096} {
		got, err := ParseKeyType(kt.String())
		if err != nil || got != kt {
			t.Fatalf("ParseKeyType(%q) = %v, %v", kt.String(), got, err)
		}
	}
	if _, err := ParseKeyType("rsa-1024"); err == nil || !strings.Contains(err.Error(), "rsa-1024") {
		t.Fatalf("ParseKeyType(rsa-1024) = %v", err)
	}
}

func TestGenerateSignVerifyEachType(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	for _, kt := range []KeyType{ECP256, ECP384, RSA2048, RSA3072, RSA4096} {
		t.Run(kt.String(), func(t *testing.T) {
			label := "key-" + kt.String()
			sg, err := tok.GenerateKey(ctx, label, kt)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if sg.KeyType() != kt || sg.Label() != label {
				t.Fatalf("signer says %s %q", sg.KeyType(), sg.Label())
			}
			checkSignatures(t, sg)

			// Found again by label and by URI: same public key.
			found, err := tok.FindKey(ctx, label)
			if err != nil {
				t.Fatalf("FindKey: %v", err)
			}
			if !publicEqual(found.Public(), sg.Public()) || found.KeyType() != kt {
				t.Fatal("FindKey returned a different key")
			}
			byURI, err := tok.Signer(ctx, sg.URI())
			if err != nil {
				t.Fatalf("Signer(%s): %v", sg.URI(), err)
			}
			if !publicEqual(byURI.Public(), sg.Public()) {
				t.Fatal("Signer(URI) returned a different key")
			}
			byID, err := tok.Signer(ctx, URI{ID: sg.ID()}.String())
			if err != nil || !publicEqual(byID.Public(), sg.Public()) {
				t.Fatalf("Signer by id only: %v", err)
			}
			mustSignVerify(t, byURI)
		})
	}
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("ListKeys: %d keys, want 5: %+v", len(keys), keys)
	}
	for _, k := range keys {
		kt, err := ParseKeyType(strings.TrimPrefix(k.Label, "key-"))
		if err != nil || k.Type != kt {
			t.Fatalf("ListKeys entry %+v: wrong type", k)
		}
		if _, err := hex.DecodeString(k.ID); err != nil || len(k.ID) != 32 {
			t.Fatalf("ListKeys entry %+v: id %q is not 16 bytes of hex", k, k.ID)
		}
		u, err := ParseURI(k.URI)
		if err != nil || u.Token != tok.label || u.Object != k.Label || hex.EncodeToString(u.ID) != k.ID || u.Type != "private" {
			t.Fatalf("ListKeys entry URI %q: %+v, %v", k.URI, u, err)
		}
	}
}

// checkSignatures signs with every scheme the key supports and verifies
// with Go's crypto.
func checkSignatures(t *testing.T, sg *Signer) {
	t.Helper()
	msg := []byte("a document to sign")
	d256 := sha256.Sum256(msg)
	d384 := sha512.Sum384(msg)
	d512 := sha512.Sum512(msg)
	d224 := sha256.Sum224(msg)
	digests := map[crypto.Hash][]byte{crypto.SHA224: d224[:], crypto.SHA256: d256[:], crypto.SHA384: d384[:], crypto.SHA512: d512[:]}
	switch pub := sg.Public().(type) {
	case *ecdsa.PublicKey:
		for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			sig, err := sg.Sign(nil, digests[h], h)
			if err != nil {
				t.Fatalf("ECDSA %v: %v", h, err)
			}
			if !ecdsa.VerifyASN1(pub, digests[h], sig) {
				t.Fatalf("ECDSA %v signature does not verify", h)
			}
		}
		if _, err := sg.Sign(nil, d256[:20], crypto.SHA256); err == nil {
			t.Fatal("ECDSA accepted a digest of the wrong length")
		}
		if _, err := sg.Sign(nil, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}); err == nil {
			t.Fatal("ECDSA accepted RSA-PSS options")
		}
	case *rsa.PublicKey:
		for h, d := range digests {
			sig, err := sg.Sign(nil, d, h)
			if err != nil {
				t.Fatalf("PKCS#1 v1.5 %v: %v", h, err)
			}
			if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
				t.Fatalf("PKCS#1 v1.5 %v: %v", h, err)
			}
			for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, 20} {
				opts := &rsa.PSSOptions{SaltLength: salt, Hash: h}
				sig, err := sg.Sign(nil, d, opts)
				if err != nil {
					t.Fatalf("PSS %v salt %d: %v", h, salt, err)
				}
				want := salt
				if salt <= 0 {
					want = h.Size()
				}
				if err := rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{SaltLength: want, Hash: h}); err != nil {
					t.Fatalf("PSS %v salt %d does not verify with salt %d: %v", h, salt, want, err)
				}
			}
		}
		if _, err := sg.Sign(nil, make([]byte, 20), crypto.SHA1); err == nil {
			t.Fatal("RSA accepted SHA-1")
		}
		if _, err := sg.Sign(nil, d256[:], &rsa.PSSOptions{SaltLength: 10000, Hash: crypto.SHA256}); err == nil {
			t.Fatal("RSA-PSS accepted an impossible salt length")
		}
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(eq)
	return ok && ea.Equal(b)
}

func TestGenerateExistingLabelRefused(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	first, err := tok.GenerateKey(ctx, "seal", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{ECP256, RSA2048} {
		if _, err := tok.GenerateKey(ctx, "seal", kt); !errors.Is(err, ErrKeyExists) {
			t.Fatalf("GenerateKey over an existing label (%s): %v, want ErrKeyExists", kt, err)
		}
	}
	again, err := tok.FindKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if !publicEqual(again.Public(), first.Public()) {
		t.Fatal("the existing key was replaced")
	}
	keys, _ := tok.ListKeys(ctx)
	if len(keys) != 1 {
		t.Fatalf("%d keys after refused generation, want 1", len(keys))
	}
}

func TestFindUnknownKeyAndForeignURI(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	var err error
	if _, err := tok.FindKey(ctx, "nope"); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("FindKey(nope) = %v, want ErrKeyNotFound naming it", err)
	}
	if _, err := tok.Signer(ctx, "pkcs11:token="+tok.label+";object=nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Signer(unknown object) = %v", err)
	}
	_, err = tok.Signer(ctx, "pkcs11:token=other-token;object=ca")
	if err == nil || !strings.Contains(err.Error(), "other-token") || !strings.Contains(err.Error(), tok.label) {
		t.Fatalf("Signer(foreign token) = %v, want an error naming both tokens", err)
	}
	if _, err := tok.Signer(ctx, "pkcs11:token="+tok.label+";object=ca;type=cert"); err == nil {
		t.Fatal("Signer accepted type=cert")
	}
	if _, err := tok.Signer(ctx, "pkcs11:token="+tok.label); err == nil {
		t.Fatal("Signer accepted a URI naming no object")
	}
	if _, err := tok.Signer(ctx, "pkcs11:token="+tok.label+";serial=000;object=nope"); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Fatalf("Signer(wrong serial) = %v", err)
	}
	ti, err := tok.p.GetTokenInfo(tok.slot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Signer(ctx, URI{Token: tok.label, Serial: ti.SerialNumber, Model: ti.Model, Object: "nope"}.String()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Signer(right serial and model) = %v, want ErrKeyNotFound", err)
	}
	if _, err := tok.Signer(ctx, "file:///etc/passwd"); err == nil {
		t.Fatal("Signer accepted a non-pkcs11 URI")
	}
}

func TestECDSADER(t *testing.T) {
	// Compare with encoding/asn1 over edge values: leading zeros, high bits.
	cases := [][]byte{}
	for _, r0 := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
		for _, s0 := range []byte{0x00, 0x7f, 0x80} {
			raw := make([]byte, 64)
			for i := range raw {
				raw[i] = byte(i + 3)
			}
			raw[0], raw[1], raw[32], raw[33] = r0, r0, s0, 0x80
			cases = append(cases, raw)
		}
	}
	raw66 := make([]byte, 132) // P-521 sized: body over 127 bytes
	raw66[0], raw66[66] = 0x01, 0xff
	cases = append(cases, raw66)
	for _, raw := range cases {
		got, err := ecdsaDER(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := marshalRS(raw)
		if hex.EncodeToString(got) != hex.EncodeToString(want) {
			t.Fatalf("ecdsaDER(%x)\n got %x\nwant %x", raw, got, want)
		}
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 250)} {
		if _, err := ecdsaDER(bad); err == nil {
			t.Fatalf("ecdsaDER accepted %d bytes", len(bad))
		}
	}
}
