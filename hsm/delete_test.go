package hsm

import (
	"context"
	"crypto"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestDeleteKey(t *testing.T) {
	ctx := context.Background()
	tok := newTestToken(t, Config{})
	if _, err := tok.GenerateKey(ctx, "doomed", ECP256); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.GenerateKey(ctx, "kept", ECP256); err != nil {
		t.Fatal(err)
	}
	if err := tok.DeleteKey(ctx, "doomed"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := tok.FindKey(ctx, "doomed"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("FindKey after delete: %v, want ErrKeyNotFound", err)
	}
	// Both halves are gone: no object of any class keeps the label.
	err := tok.do(ctx, func(s *session) error {
		hs, err := findObjects(tok.p, s.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "doomed")}, 0)
		if err != nil {
			return err
		}
		if len(hs) != 0 {
			t.Errorf("%d objects labelled doomed remain", len(hs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.DeleteKey(ctx, "doomed"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second DeleteKey: %v, want ErrKeyNotFound", err)
	}
	k, err := tok.FindKey(ctx, "kept")
	if err != nil {
		t.Fatalf("the other key went too: %v", err)
	}
	if _, err := k.Sign(nil, make([]byte, 32), crypto.SHA256); err != nil {
		t.Fatalf("signing with the kept key: %v", err)
	}
	// The label is free again.
	if _, err := tok.GenerateKey(ctx, "doomed", ECP256); err != nil {
		t.Fatalf("regenerating a deleted label: %v", err)
	}
}

// TestDeleteKeyStoppedHalfway: a deletion stopped after its first object
// leaves no private key behind without its public key (one ListKeys would
// show with no public key, which a caller matching keys by their public
// key, as ca root retire-online does, cannot recognise).
func TestDeleteKeyStoppedHalfway(t *testing.T) {
	ctx := context.Background()
	tok := newTestToken(t, Config{})
	if _, err := tok.GenerateKey(ctx, "doomed", ECP256); err != nil {
		t.Fatal(err)
	}
	n := 0
	tok.testHookDestroy = func() error {
		if n++; n == 2 {
			return errors.New("stopped")
		}
		return nil
	}
	if err := tok.DeleteKey(ctx, "doomed"); err == nil {
		t.Fatal("DeleteKey stopped halfway did not fail")
	}
	tok.testHookDestroy = nil
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Label == "doomed" {
			t.Fatalf("the private key is left (public key %v)", k.Public)
		}
	}
	if err := tok.DeleteKey(ctx, "doomed"); err != nil {
		t.Fatalf("DeleteKey again: %v", err)
	}
}
