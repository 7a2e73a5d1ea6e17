package hsm

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/testenv"
)

// sessionCopies returns the handles of this process's session objects
// labelled label (private keys).
func sessionCopies(t *testing.T, tok *Token, label string) []pkcs11.ObjectHandle {
	t.Helper()
	var hs []pkcs11.ObjectHandle
	err := tok.do(context.Background(), func(s *session) error {
		var err error
		hs, err = findObjects(tok.p, s.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestSessionCopies: a Signer using session copies signs correctly from
// every pooled session, each copy is as locked-down as the token key, and
// the copies are invisible to key lookup and listing.
func TestSessionCopies(t *testing.T) {
	for _, kt := range []KeyType{ECP256, ECP384, RSA2048} {
		t.Run(kt.String(), func(t *testing.T) {
			reg := newRegistry()
			tok := newTestToken(t, Config{Registerer: reg, PoolSize: 4})
			ctx := context.Background()
			sg, err := tok.GenerateKey(ctx, "hot", kt)
			if err != nil {
				t.Fatal(err)
			}
			sg.UseSessionCopies()
			signConcurrently(t, sg, 4, 20)
			mustSignVerify(t, sg)

			copies := sessionCopies(t, tok, "hot")
			if len(copies) == 0 || len(copies) > 4 {
				t.Fatalf("%d session copies for a pool of 4 sessions, want 1 to 4", len(copies))
			}
			err = tok.do(ctx, func(s *session) error {
				for _, h := range copies {
					a, err := tok.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
						pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
						pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
						pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
						pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
					})
					if err != nil {
						return err
					}
					want := []byte{1, 0, 1, 0, 0}
					for i, at := range a {
						if len(at.Value) != 1 || at.Value[0] != want[i] {
							t.Errorf("copy attribute %#x = %v, want %d", at.Type, at.Value, want[i])
						}
					}
					// The secret value cannot be read from the copy.
					if _, err := tok.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
						t.Error("CKA_VALUE of a session copy was readable")
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Lookup and listing see the token key only.
			again, err := tok.FindKey(ctx, "hot")
			if err != nil {
				t.Fatalf("FindKey with session copies present: %v", err)
			}
			mustSignVerify(t, again)
			keys, err := tok.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 {
				t.Fatalf("ListKeys: %d keys, want 1 (copies must not be listed): %+v", len(keys), keys)
			}
			if got := sumCounter(t, reg, "thiqa_hsm_recoveries_total"); got != 0 {
				t.Fatalf("%v recoveries while signing with copies, want 0", got)
			}
		})
	}
}

// TestSessionCopiesDeleteKey: deleting a key destroys its copies and stops
// its Signer; another key's copies keep signing without a recovery.
func TestSessionCopiesDeleteKey(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{Registerer: reg, PoolSize: 4})
	ctx := context.Background()
	doomed, err := tok.GenerateKey(ctx, "doomed", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := tok.GenerateKey(ctx, "kept", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	doomed.UseSessionCopies()
	kept.UseSessionCopies()
	signConcurrently(t, doomed, 4, 10)
	signConcurrently(t, kept, 4, 10)

	if err := tok.DeleteKey(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	if n := len(sessionCopies(t, tok, "doomed")); n != 0 {
		t.Fatalf("%d session copies of a deleted key remain", n)
	}
	if _, err := doomed.Sign(nil, testDigest[:], crypto.SHA256); err == nil {
		t.Fatal("a deleted key still signs through its session copy")
	}
	recoveriesAfterDelete := sumCounter(t, reg, "thiqa_hsm_recoveries_total")
	signConcurrently(t, kept, 4, 10)
	if got := sumCounter(t, reg, "thiqa_hsm_recoveries_total"); got != recoveriesAfterDelete {
		t.Fatalf("signing with a kept key's copies needed %v recoveries after another key was deleted", got-recoveriesAfterDelete)
	}
	// Signing with the deleted key's stale handle made the token recover
	// (as without copies), which closed every session: the kept key has
	// new copies, at most one per session.
	if n := len(sessionCopies(t, tok, "kept")); n < 1 || n > 4 {
		t.Fatalf("kept key has %d session copies after the delete (pool of 4)", n)
	}
	if _, err := tok.FindKey(ctx, "doomed"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("FindKey of the deleted key: %v, want ErrKeyNotFound", err)
	}
}

// TestSessionCopiesRecovery: copies vanish with their sessions when the
// sessions are closed behind the Token's back; signing recovers and makes
// new ones.
func TestSessionCopiesRecovery(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{Registerer: reg, PoolSize: 4})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "hot", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	sg.UseSessionCopies()
	signConcurrently(t, sg, 4, 10)
	if err := saboteur(t, tok).CloseAllSessions(tok.slot); err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)
	signConcurrently(t, sg, 4, 10)
	if got := sumCounter(t, reg, "thiqa_hsm_recoveries_total"); got < 1 {
		t.Fatal("closing every session was not noticed")
	}
	if n := len(sessionCopies(t, tok, "hot")); n == 0 || n > 4 {
		t.Fatalf("%d session copies after recovery, want 1 to 4", n)
	}
}

// TestSessionCopyRefused: a key the token will not copy (CKA_COPYABLE
// false) keeps signing with the token object, and says so once.
func TestSessionCopyRefused(t *testing.T) {
	var logs testenv.SyncBuffer
	tok := newTestToken(t, Config{Registerer: newRegistry(), PoolSize: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	mech, pub, priv := keyTemplates("fixed", []byte{1, 2, 3}, ECP256)
	priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, false))
	err := tok.do(ctx, func(s *session) error {
		_, _, err := tok.p.GenerateKeyPair(s.h, mech, pub, priv)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := tok.FindKey(ctx, "fixed")
	if err != nil {
		t.Fatal(err)
	}
	sg.UseSessionCopies()
	signConcurrently(t, sg, 2, 10)
	mustSignVerify(t, sg)
	if n := len(sessionCopies(t, tok, "fixed")); n != 0 {
		t.Fatalf("%d copies of a key marked not copyable", n)
	}
	if n := strings.Count(logs.String(), "refused a session copy"); n != 1 {
		t.Fatalf("refusal logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestRawSignRateSessionCopy: the raw ceiling with session copies signs and
// leaves no copy behind.
func TestRawSignRateSessionCopy(t *testing.T) {
	tok := newTestToken(t, Config{Registerer: newRegistry(), PoolSize: 2})
	ctx := context.Background()
	if _, err := tok.GenerateKey(ctx, "raw", ECP256); err != nil {
		t.Fatal(err)
	}
	r, err := RawSignRateSessionCopy(ctx, tok, "raw", 2, 50*time.Millisecond)
	if err != nil || r <= 0 {
		t.Fatalf("RawSignRateSessionCopy = %v, %v", r, err)
	}
	if n := len(sessionCopies(t, tok, "raw")); n != 0 {
		t.Fatalf("%d session copies left after the raw measurement", n)
	}
}

// TestSessionCopiesShared: Signers of one key (a credential loaded again)
// share one copy per session instead of piling up copies.
func TestSessionCopiesShared(t *testing.T) {
	tok := newTestToken(t, Config{Registerer: newRegistry(), PoolSize: 2})
	ctx := context.Background()
	first, err := tok.GenerateKey(ctx, "shared", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	signers := []*Signer{first}
	for range 3 {
		sg, err := tok.FindKey(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, sg)
	}
	for _, sg := range signers {
		sg.UseSessionCopies()
		signConcurrently(t, sg, 4, 10)
	}
	if n := len(sessionCopies(t, tok, "shared")); n < 1 || n > 2 {
		t.Fatalf("%d session copies of one key used through 4 Signers with 2 sessions, want 1 or 2", n)
	}
}

// TestSessionCopyChildDelete is the other process of
// TestSessionCopiesDeletedElsewhere: it deletes a key by label.
func TestSessionCopyChildDelete(t *testing.T) {
	label := os.Getenv("THIQA_HSM_CHILD_DELETE")
	if label == "" {
		return // only as the child process
	}
	tok, err := Open(context.Background(), Config{ModulePath: os.Getenv("THIQA_HSM_CHILD_MODULE"), TokenLabel: os.Getenv("THIQA_HSM_CHILD_TOKEN"), PIN: testUserPIN})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if os.Getenv("THIQA_HSM_CHILD_DISABLE") != "" {
		err = tok.do(context.Background(), func(s *session) error {
			h, err := findPrivate(tok.p, s, label, nil)
			if err != nil {
				return err
			}
			return tok.p.SetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, false)})
		})
	} else {
		err = tok.DeleteKey(context.Background(), label)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSessionCopiesDeletedElsewhere: a key another process destroys or
// disables (an operator's pkcs11-tool) stops signing through the copies
// within the recheck interval, as it stops at once through the token key.
func TestSessionCopiesDeletedElsewhere(t *testing.T) {
	for _, disable := range []bool{false, true} {
		name := map[bool]string{false: "destroyed", true: "sign-disabled"}[disable]
		t.Run(name, func(t *testing.T) {
			tok := newTestToken(t, Config{Registerer: newRegistry(), PoolSize: 2})
			tok.copyRecheck = 20 * time.Millisecond
			ctx := context.Background()
			sg, err := tok.GenerateKey(ctx, "compromised", ECP256)
			if err != nil {
				t.Fatal(err)
			}
			sg.UseSessionCopies()
			signConcurrently(t, sg, 2, 5)
			if len(sessionCopies(t, tok, "compromised")) == 0 {
				t.Fatal("no session copy was made")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSessionCopyChildDelete$")
			cmd.Env = append(os.Environ(), "THIQA_HSM_CHILD_DELETE=compromised", "THIQA_HSM_CHILD_TOKEN="+tok.label, "THIQA_HSM_CHILD_MODULE="+tok.module)
			if disable {
				cmd.Env = append(cmd.Env, "THIQA_HSM_CHILD_DISABLE=1")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("other process: %v\n%s", err, out)
			}
			time.Sleep(2 * tok.copyRecheck)
			for i := range 10 {
				if _, err := sg.Sign(nil, testDigest[:], crypto.SHA256); err == nil {
					t.Fatalf("signature %d succeeded after another process %s the key", i+1, name)
				}
			}
		})
	}
}

// TestSessionCopiesEvicted: a session holds at most maxCopies copies and
// evicts the least recently used; evicted keys still sign.
func TestSessionCopiesEvicted(t *testing.T) {
	tok := newTestToken(t, Config{Registerer: newRegistry(), PoolSize: 2})
	tok.maxCopies = 2
	ctx := context.Background()
	var keys []*Signer
	for _, l := range []string{"k1", "k2", "k3", "k4"} {
		sg, err := tok.GenerateKey(ctx, l, ECP256)
		if err != nil {
			t.Fatal(err)
		}
		sg.UseSessionCopies()
		keys = append(keys, sg)
	}
	for range 3 {
		for _, sg := range keys {
			signConcurrently(t, sg, 2, 4)
		}
	}
	total := 0
	for _, l := range []string{"k1", "k2", "k3", "k4"} {
		total += len(sessionCopies(t, tok, l))
	}
	if total == 0 || total > 2*tok.maxCopies {
		t.Fatalf("%d session copies in 2 sessions holding at most %d each", total, tok.maxCopies)
	}
}
