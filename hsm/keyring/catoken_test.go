package keyring

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/hsm"
)

// A CAToken is both the CA hierarchy's token and the key ceremony's.
var (
	_ hierarchy.Token = CAToken{}
	_ ceremony.Token  = CAToken{}
)

func TestCAToken(t *testing.T) {
	ctx := context.Background()
	tok := testToken(t)
	rec := &recorder{}
	ct := CAToken{Token: tok, Audit: rec}
	if _, err := ct.FindKey(ctx, "root"); !errors.Is(err, ca.ErrKeyNotFound) || !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("FindKey of a missing key: %v", err)
	}
	if _, err := ct.GenerateKey(ctx, "root", "dsa-1024"); err == nil {
		t.Fatal("an unknown key type was accepted")
	}
	root, err := ct.GenerateKey(ctx, "root", "ec-p384")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.entries) != 1 || rec.entries[0].Action != "key.generate" || rec.entries[0].Object != root.URI() ||
		detail(rec.entries[0], "keyType") != hsm.ECP384.String() {
		t.Fatalf("generation record: %+v", rec.entries)
	}
	if pub, ok := root.Public().(*ecdsa.PublicKey); !ok || pub.Curve.Params().Name != "P-384" {
		t.Fatalf("generated key: %T", root.Public())
	}
	if k, err := ct.FindKey(ctx, "root"); err != nil || k.URI() != root.URI() {
		t.Fatalf("FindKey: %v", err)
	}

	// Without an audit log, nothing is recorded.
	quiet := CAToken{Token: tok}
	issuing, err := quiet.GenerateKey(ctx, "issuing", "ec-p256")
	if err != nil || len(rec.entries) != 1 {
		t.Fatalf("GenerateKey without a log: %v, %d records", err, len(rec.entries))
	}

	keys, err := ct.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys: %v %+v", err, keys)
	}
	byURI := map[string]hierarchy.KeyInfo{}
	for _, k := range keys {
		byURI[k.URI] = k
	}
	for _, k := range []ca.TokenKey{root, issuing} {
		info, ok := byURI[k.URI()]
		if !ok || info.Public == nil || !info.Public.(*ecdsa.PublicKey).Equal(k.Public()) {
			t.Fatalf("Keys lacks %s: %+v", k.URI(), keys)
		}
	}

	if err := ct.DeleteKey(ctx, "issuing"); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.FindKey(ctx, "issuing"); !errors.Is(err, ca.ErrKeyNotFound) {
		t.Fatalf("deleted key still found: %v", err)
	}
}

func TestCATokenFailingAudit(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{err: errors.New("disk full")}
	if _, err := (CAToken{Token: testToken(t), Audit: rec}).GenerateKey(ctx, "root", "ec-p256"); err == nil {
		t.Fatal("a key whose generation could not be recorded was handed out")
	}
}
