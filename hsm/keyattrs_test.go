package hsm

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/testenv"
)

// allKeyTypes are the key types GenerateKey supports.
var allKeyTypes = []KeyType{ECP256, ECP384, RSA2048, RSA3072, RSA4096}

// boolAttrs reads boolean attributes of obj; a missing or unreadable one
// is reported as absent.
func boolAttrs(t *testing.T, tok *Token, s *session, obj pkcs11.ObjectHandle, types []uint) map[uint]*bool {
	t.Helper()
	out := make(map[uint]*bool, len(types))
	for _, typ := range types {
		a, err := tok.p.GetAttributeValue(s.h, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
		if err != nil || len(a) != 1 || len(a[0].Value) != 1 {
			out[typ] = nil
			continue
		}
		v := a[0].Value[0] != 0
		out[typ] = &v
	}
	return out
}

// attrName names the attributes the tests below check.
var attrName = map[uint]string{
	pkcs11.CKA_TOKEN: "CKA_TOKEN", pkcs11.CKA_PRIVATE: "CKA_PRIVATE", pkcs11.CKA_SENSITIVE: "CKA_SENSITIVE",
	pkcs11.CKA_EXTRACTABLE: "CKA_EXTRACTABLE", pkcs11.CKA_ALWAYS_SENSITIVE: "CKA_ALWAYS_SENSITIVE",
	pkcs11.CKA_NEVER_EXTRACTABLE: "CKA_NEVER_EXTRACTABLE", pkcs11.CKA_SIGN: "CKA_SIGN",
	pkcs11.CKA_SIGN_RECOVER: "CKA_SIGN_RECOVER", pkcs11.CKA_DECRYPT: "CKA_DECRYPT", pkcs11.CKA_UNWRAP: "CKA_UNWRAP",
	pkcs11.CKA_DERIVE: "CKA_DERIVE", pkcs11.CKA_VERIFY: "CKA_VERIFY", pkcs11.CKA_VERIFY_RECOVER: "CKA_VERIFY_RECOVER",
	pkcs11.CKA_ENCRYPT: "CKA_ENCRYPT", pkcs11.CKA_WRAP: "CKA_WRAP",
}

// checkBools compares the attributes read with want.
func checkBools(t *testing.T, what string, got map[uint]*bool, want map[uint]bool) {
	t.Helper()
	for typ, w := range want {
		g := got[typ]
		switch {
		case g == nil:
			t.Errorf("%s: %s cannot be read, want %v", what, attrName[typ], w)
		case *g != w:
			t.Errorf("%s: %s = %v, want %v", what, attrName[typ], *g, w)
		}
	}
}

// wantPrivate and wantPublic are the attributes of a generated key pair:
// the private half lives on the token, behind the login, never leaves it
// (sensitive, not extractable, never was either) and may only sign (not
// sign with message recovery either: SoftHSM, like PKCS#11 itself, leaves
// CKA_SIGN_RECOVER and CKA_VERIFY_RECOVER to the token's default, and its
// default is true).
var (
	wantPrivate = map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true,
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_NEVER_EXTRACTABLE: true,
		pkcs11.CKA_SIGN: true, pkcs11.CKA_SIGN_RECOVER: false, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	}
	wantPublic = map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_VERIFY: true, pkcs11.CKA_VERIFY_RECOVER: false,
		pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_WRAP: false, pkcs11.CKA_DERIVE: false,
	}
)

// TestGeneratedKeyAttributes generates a key of every supported type on a
// real token and reads back, through PKCS#11, what the token made of it:
// the attributes of both halves, that the private value cannot be read,
// wrapped out, or copied into an extractable or non-sensitive object.
func TestGeneratedKeyAttributes(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	for _, kt := range allKeyTypes {
		label := "attrs-" + kt.String()
		sg, err := tok.GenerateKey(ctx, label, kt)
		if err != nil {
			t.Fatal(err)
		}
		err = tok.do(ctx, func(s *session) error {
			priv, err := sg.handle(s)
			if err != nil {
				return err
			}
			pubs, err := findObjects(tok.p, s.h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			}, 2)
			if err != nil {
				return err
			}
			if len(pubs) != 1 {
				t.Fatalf("%s: %d public keys labelled %q, want 1", kt, len(pubs), label)
			}
			checkBools(t, kt.String()+" private key", boolAttrs(t, tok, s, priv, keysOf(wantPrivate)), wantPrivate)
			checkBools(t, kt.String()+" public key", boolAttrs(t, tok, s, pubs[0], keysOf(wantPublic)), wantPublic)

			// Both halves carry the label and the same 16-byte CKA_ID.
			for _, obj := range []pkcs11.ObjectHandle{priv, pubs[0]} {
				a, err := tok.p.GetAttributeValue(s.h, obj, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
					pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
				})
				if err != nil {
					return err
				}
				if string(a[0].Value) != label || hex.EncodeToString(a[1].Value) != hex.EncodeToString(sg.ID()) || len(a[1].Value) != 16 {
					t.Errorf("%s: object labelled %q with id %x, want %q and %x", kt, a[0].Value, a[1].Value, label, sg.ID())
				}
			}

			// The private value cannot be read: CKA_VALUE (EC) and every
			// secret component of an RSA key are sensitive.
			secret := []uint{pkcs11.CKA_VALUE}
			if kt.IsRSA() {
				secret = []uint{pkcs11.CKA_PRIVATE_EXPONENT, pkcs11.CKA_PRIME_1, pkcs11.CKA_PRIME_2,
					pkcs11.CKA_EXPONENT_1, pkcs11.CKA_EXPONENT_2, pkcs11.CKA_COEFFICIENT}
			}
			for _, typ := range secret {
				if _, err := tok.p.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)}); !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
					t.Errorf("%s: reading attribute 0x%x of the private key: %v, want CKR_ATTRIBUTE_SENSITIVE", kt, typ, err)
				}
			}
			if kt.IsRSA() { // an RSA private key has no CKA_VALUE at all
				if _, err := tok.p.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
					t.Errorf("%s: CKA_VALUE of the private key was readable", kt)
				}
			}

			// It cannot be wrapped out, even under a key made for wrapping
			// in this very session.
			kek, err := tok.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			})
			if err != nil {
				return err
			}
			defer func() { _ = tok.p.DestroyObject(s.h, kek) }()
			if w, err := tok.p.WrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, kek, priv); !isRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE) {
				t.Errorf("%s: wrapping the private key: %d bytes, %v, want CKR_KEY_UNEXTRACTABLE", kt, len(w), err)
			}

			// Only the mechanisms the Signer uses: without
			// CKA_ALLOWED_MECHANISMS an RSA signing key also performs raw
			// RSA (CKM_RSA_X_509), which decrypts whatever was encrypted
			// to its public key despite CKA_DECRYPT false.
			want := []uint{pkcs11.CKM_ECDSA}
			if kt.IsRSA() {
				want = []uint{pkcs11.CKM_RSA_PKCS, pkcs11.CKM_RSA_PKCS_PSS}
			}
			am, err := tok.p.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ALLOWED_MECHANISMS, nil)})
			if err != nil {
				return err
			}
			if got := ulongList(am[0].Value); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: CKA_ALLOWED_MECHANISMS = %#x, want %#x", kt, got, want)
			}
			if kt.IsRSA() {
				err := tok.p.SignInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}, priv)
				if err == nil {
					raw, err := tok.p.Sign(s.h, make([]byte, kt.rsaBits()/8))
					t.Errorf("%s: raw RSA with the signing key: %d bytes, %v, want CKR_MECHANISM_INVALID", kt, len(raw), err)
				} else if !isRV(err, pkcs11.CKR_MECHANISM_INVALID) {
					t.Errorf("%s: raw RSA with the signing key: %v, want CKR_MECHANISM_INVALID", kt, err)
				}
			}

			// Nor copied into an object that could be.
			for _, a := range []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			} {
				c, err := tok.p.CopyObject(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false), a})
				if err == nil {
					_ = tok.p.DestroyObject(s.h, c)
					t.Errorf("%s: the token made a copy with %s changed", kt, attrName[a.Type])
				}
				if err := tok.p.SetAttributeValue(s.h, priv, []*pkcs11.Attribute{a}); err == nil {
					t.Errorf("%s: the token changed %s of the private key", kt, attrName[a.Type])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func keysOf(m map[uint]bool) []uint {
	out := make([]uint, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ulongList decodes a CK_MECHANISM_TYPE array (native CK_ULONGs).
func ulongList(b []byte) []uint {
	size := len(pkcs11.NewAttribute(0, uint(0)).Value)
	var out []uint
	for ; len(b) >= size; b = b[size:] {
		out = append(out, bytesToUint(b[:size]))
	}
	return out
}

// makeForeignKey generates, as another tool would, an EC key pair labelled
// label whose private half has the attributes over (replacing Thiqa's),
// then applies the changes after (C_SetAttributeValue).
func makeForeignKey(t *testing.T, tok *Token, label string, over, after []*pkcs11.Attribute) {
	t.Helper()
	mech, pub, priv := keyTemplates(label, []byte(label), ECP256)
	for _, a := range over {
		priv = append(withoutAttribute(priv, a.Type), a)
	}
	err := tok.do(context.Background(), func(s *session) error {
		_, h, err := tok.p.GenerateKeyPair(s.h, mech, pub, priv)
		if err != nil {
			return err
		}
		if len(after) > 0 {
			return tok.p.SetAttributeValue(s.h, h, after)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("making key %q: %v", label, err)
	}
}

// TestFoundKeyThatCanLeaveTheToken: a key made by another tool is used
// only if it cannot leave the token. One that is extractable or not
// sensitive is refused (ErrKeyExportable), by label and by URI; one that
// once could leave it, or may do more than sign, is used with a warning,
// given once.
func TestFoundKeyThatCanLeaveTheToken(t *testing.T) {
	var logs testenv.SyncBuffer
	tok := newTestToken(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	f, tr := pkcs11.NewAttribute, true
	makeForeignKey(t, tok, "extractable", []*pkcs11.Attribute{f(pkcs11.CKA_EXTRACTABLE, tr)}, nil)
	makeForeignKey(t, tok, "not-sensitive", []*pkcs11.Attribute{f(pkcs11.CKA_SENSITIVE, false)}, nil)
	makeForeignKey(t, tok, "plain", []*pkcs11.Attribute{f(pkcs11.CKA_SENSITIVE, false), f(pkcs11.CKA_EXTRACTABLE, tr)}, nil)
	for _, label := range []string{"extractable", "not-sensitive", "plain"} {
		if _, err := tok.FindKey(ctx, label); !errors.Is(err, ErrKeyExportable) || !strings.Contains(err.Error(), label) {
			t.Errorf("FindKey(%s) = %v, want ErrKeyExportable naming the key", label, err)
		}
		if _, err := tok.Signer(ctx, "pkcs11:token="+tok.label+";object="+label); !errors.Is(err, ErrKeyExportable) {
			t.Errorf("Signer(%s) = %v, want ErrKeyExportable", label, err)
		}
	}

	// Made extractable, then locked: usable, but the token says it was
	// not always so (CKA_NEVER_EXTRACTABLE false).
	makeForeignKey(t, tok, "once-extractable", []*pkcs11.Attribute{f(pkcs11.CKA_EXTRACTABLE, tr)}, []*pkcs11.Attribute{f(pkcs11.CKA_EXTRACTABLE, false)})
	makeForeignKey(t, tok, "once-plain", []*pkcs11.Attribute{f(pkcs11.CKA_SENSITIVE, false)}, []*pkcs11.Attribute{f(pkcs11.CKA_SENSITIVE, tr)})
	makeForeignKey(t, tok, "decrypts", []*pkcs11.Attribute{f(pkcs11.CKA_DECRYPT, tr), f(pkcs11.CKA_DERIVE, tr)}, nil)
	for label, warn := range map[string]string{
		"once-extractable": "CKA_NEVER_EXTRACTABLE", "once-plain": "CKA_ALWAYS_SENSITIVE", "decrypts": "CKA_DERIVE",
	} {
		for range 2 {
			sg, err := tok.FindKey(ctx, label)
			if err != nil {
				t.Fatalf("FindKey(%s): %v", label, err)
			}
			mustSignVerify(t, sg)
		}
		var lines []string
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, "key="+label+" ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], warn) {
			t.Errorf("%s: want one warning naming %s, got %q", label, warn, lines)
		}
	}

	// ListKeys shows every one of them, with what differs.
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range keys {
		got[k.Label] = strings.Join(k.Deviations, ",")
	}
	for label, want := range map[string]string{
		"extractable":      "CKA_EXTRACTABLE=true,CKA_NEVER_EXTRACTABLE=false",
		"not-sensitive":    "CKA_SENSITIVE=false,CKA_ALWAYS_SENSITIVE=false",
		"plain":            "CKA_SENSITIVE=false,CKA_EXTRACTABLE=true,CKA_ALWAYS_SENSITIVE=false,CKA_NEVER_EXTRACTABLE=false",
		"once-extractable": "CKA_NEVER_EXTRACTABLE=false",
		"once-plain":       "CKA_ALWAYS_SENSITIVE=false",
		"decrypts":         "CKA_DECRYPT=true,CKA_DERIVE=true",
	} {
		if got[label] != want {
			t.Errorf("ListKeys: %s deviates in %q, want %q", label, got[label], want)
		}
	}

	// Thiqa's own keys pass without a word.
	if _, err := tok.GenerateKey(ctx, "own", ECP256); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.FindKey(ctx, "own"); err != nil {
		t.Fatalf("FindKey(own): %v", err)
	}
	if keys, err := tok.ListKeys(ctx); err != nil || len(keys) != 7 {
		t.Fatalf("ListKeys: %d keys, %v", len(keys), err)
	} else {
		for _, k := range keys {
			if k.Label == "own" && len(k.Deviations) != 0 {
				t.Errorf("ListKeys: a key Thiqa generated deviates in %q", k.Deviations)
			}
		}
	}
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, "key=own ") && strings.Contains(l, "level=WARN") {
			t.Errorf("a key Thiqa generated was warned about: %s", l)
		}
	}
}

// TestFindKeyRefusesTwoKeysOneLabel: two private keys labelled alike (two
// nodes that generated one key at once) are refused, never one of them at
// random, with ErrKeyAmbiguous and a message naming both ids and the way
// out; ListKeys shows both, and destroying one by its id (as the message's
// pkcs11-tool command does) makes the label usable again.
func TestFindKeyRefusesTwoKeysOneLabel(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	first, err := tok.GenerateKey(ctx, "twice", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	makeForeignKey(t, tok, "twice", nil, nil) // CKA_ID "twice"
	second := hex.EncodeToString([]byte("twice"))
	keys, err := tok.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys: %v %+v", err, keys)
	}
	firstID := keys[0].ID
	if firstID == second {
		firstID = keys[1].ID
	}
	for _, find := range []func() (*Signer, error){
		func() (*Signer, error) { return tok.FindKey(ctx, "twice") },
		func() (*Signer, error) { return tok.Signer(ctx, "pkcs11:object=twice") },
	} {
		_, err := find()
		if !errors.Is(err, ErrKeyAmbiguous) {
			t.Fatalf("two keys, one label: %v, want ErrKeyAmbiguous", err)
		}
		for _, want := range []string{`key "twice"`, firstID, second, "pkcs11-tool --module", "--delete-object --type privkey --id ID", "--type pubkey"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal %q does not say %q", err, want)
			}
		}
	}
	// Named by id too, either key is found.
	if k, err := tok.Signer(ctx, "pkcs11:object=twice;id=%74%77%69%63%65"); err != nil || k.URI() == first.URI() {
		t.Fatalf("by label and id: %v", err)
	}

	err = tok.do(ctx, func(s *session) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			hs, err := findObjects(tok.p, s.h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte("twice")),
			}, 0)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if err := tok.p.DestroyObject(s.h, h); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := tok.FindKey(ctx, "twice"); err != nil || k.URI() != first.URI() {
		t.Fatalf("after destroying the second key: %v", err)
	}
}
