package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPINLifeCycle drives change, reset and activation through package pin
// over both tables that keep PINs (signing credentials, mobile IDs), on
// both dialects: the activation code is kept only as a hash, works once,
// expires, and wrong codes void it.
func TestPINLifeCycle(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			sc := db.SigningCredentials()
			if _, err := sc.RegisterCredential(ctx, signing.CredentialRecord{ID: "cred-s", OwnerKind: signing.OwnerCitizen, OwnerID: "12345678",
				Profile: "citizen-signing", KeyLabel: "cred-s", CertSerial: "0b", ChainDER: []byte{1}, NotAfter: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := db.Identity().EnrolMobileID(ctx, "cred-m", "12345678", time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, subject, table, key string
				store                     pin.LifecycleStore
			}{
				{"signing", "cred-s", "signing_credentials", "id", sc},
				{"mobile", "cred-m", "oidc_mobile_ids", "credential_id", db.Identity()},
			} {
				t.Run(c.name, func(t *testing.T) { pinLifeCycle(t, ctx, db, c.store, c.subject, c.table, c.key) })
			}
		})
	}
}

type rawDB interface {
	QueryInt64(ctx context.Context, q string, args ...any) (int64, error)
}

func pinLifeCycle(t *testing.T, ctx context.Context, db rawDB, s pin.LifecycleStore, subject, table, key string) {
	p := pin.DefaultParams()
	p.MemoryKiB, p.Time = 64, 1
	m, err := pin.New(s, p)
	if err != nil {
		t.Fatal(err)
	}
	count := func(where string) int64 {
		t.Helper()
		n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+key+` = ? AND `+where, subject)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := m.Set(ctx, subject, "482916"); err != nil {
		t.Fatal(err)
	}
	if err := m.Change(ctx, subject, "000001", "583920"); !errors.Is(err, pin.ErrWrong) || count("pin_failures = 1") != 1 {
		t.Fatalf("change with a wrong old PIN: %v", err)
	}
	if err := m.Change(ctx, subject, "482916", "583920"); err != nil || count("pin_failures = 0") != 1 {
		t.Fatalf("change: %v", err)
	}
	if err := m.Check(ctx, subject, "583920"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplacePIN(ctx, subject, "not-the-hash", "x", nil); ok || err != nil {
		t.Fatalf("replace on a stale hash: %v %v", ok, err)
	}
	for range 5 {
		_ = m.Check(ctx, subject, "000001")
	}
	if err := m.Check(ctx, subject, "583920"); !errors.Is(err, pin.ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	if _, err := m.Reset(ctx, "no-such-credential"); !errors.Is(err, pin.ErrNoSubject) {
		t.Fatalf("reset unknown: %v", err)
	}
	a, err := m.Reset(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if count("pin_hash IS NULL AND pin_failures = 0 AND activation_hash IS NOT NULL AND activation_failures = 0") != 1 {
		t.Fatal("reset did not clear and unlock the PIN")
	}
	if err := m.Set(ctx, subject, "613572"); !errors.Is(err, pin.ErrAlreadySet) {
		t.Fatalf("set without the code: %v", err)
	}
	if err := m.Activate(ctx, subject, "0000-0000-0000", "613572"); !errors.Is(err, pin.ErrWrongCode) || count("activation_failures = 1") != 1 {
		t.Fatalf("wrong code: %v", err)
	}
	if err := m.Activate(ctx, subject, a.Code, "613572"); err != nil {
		t.Fatalf("activate: %v", err)
	}
	if count("activation_hash IS NULL AND activation_expires_at IS NULL AND activation_failures = 0 AND pin_hash IS NOT NULL") != 1 {
		t.Fatal("activation not cleared")
	}
	if err := m.Check(ctx, subject, "613572"); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate(ctx, subject, a.Code, "724683"); !errors.Is(err, pin.ErrNoActivation) {
		t.Fatalf("reused code: %v", err)
	}
	// An expired code, and one voided by wrong tries.
	if ok, err := s.ResetPIN(ctx, subject, []byte("h"), time.Now().Add(-time.Second), nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if out, _, err := s.ActivatePIN(ctx, subject, []byte("h"), "x", time.Now(), 5, nil); out != pin.ActivationExpired || err != nil {
		t.Fatalf("expired: %v %v", out, err)
	}
	a, _ = m.Reset(ctx, subject)
	for range 5 {
		_ = m.Activate(ctx, subject, "0000-0000-0000", "613572")
	}
	if err := m.Activate(ctx, subject, a.Code, "613572"); !errors.Is(err, pin.ErrNoActivation) {
		t.Fatalf("voided code: %v", err)
	}
}
