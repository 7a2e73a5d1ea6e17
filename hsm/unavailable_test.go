package hsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestUnavailableMarked injects module return values into an operation (the
// function do runs with a real SoftHSM session) and checks which errors
// are marked as "the token is unavailable for now" (outage.Is) and that
// the module's error stays in the chain.
func TestUnavailableMarked(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{Registerer: reg})
	ctx := context.Background()
	cases := []struct {
		name   string
		rv     uint
		always bool // the fault comes back after every recovery
		marked bool
	}{
		{"device-error", pkcs11.CKR_DEVICE_ERROR, false, true},
		{"device-memory", pkcs11.CKR_DEVICE_MEMORY, false, true},
		{"session-count", pkcs11.CKR_SESSION_COUNT, false, true},
		{"token-not-present-persisting", pkcs11.CKR_TOKEN_NOT_PRESENT, true, true},
		{"device-removed-persisting", pkcs11.CKR_DEVICE_REMOVED, true, true},
		{"session-closed-persisting", pkcs11.CKR_SESSION_CLOSED, true, true},
		{"session-handle-invalid-persisting", pkcs11.CKR_SESSION_HANDLE_INVALID, true, true},
		{"not-logged-in-persisting", pkcs11.CKR_USER_NOT_LOGGED_IN, true, true},
		{"mechanism-invalid", pkcs11.CKR_MECHANISM_INVALID, false, false},
		{"data-len-range", pkcs11.CKR_DATA_LEN_RANGE, false, false},
		{"key-type-inconsistent", pkcs11.CKR_KEY_TYPE_INCONSISTENT, false, false},
		{"key-function-not-permitted", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED, false, false},
		{"general-error", pkcs11.CKR_GENERAL_ERROR, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := tok.do(ctx, func(*session) error {
				calls++
				return pkcs11.Error(c.rv)
			})
			if got := outage.Is(err); got != c.marked {
				t.Fatalf("%v: marked %v, want %v", err, got, c.marked)
			}
			if !isRV(err, c.rv) {
				t.Fatalf("%v: the module's error left the chain", err)
			}
			if c.always && calls != maxAttempts {
				t.Fatalf("%d attempts, want %d (recovered in between)", calls, maxAttempts)
			}
		})
	}
	// A fault that a recovery cures is no error at all.
	calls := 0
	if err := tok.do(ctx, func(*session) error {
		if calls++; calls == 1 {
			return pkcs11.Error(pkcs11.CKR_SESSION_CLOSED)
		}
		return nil
	}); err != nil {
		t.Fatalf("a fault cured by a recovery: %v", err)
	}
	// Errors of the caller's making, from the real token, stay unmarked.
	if _, err := tok.FindKey(ctx, "no-such-key"); !errors.Is(err, ErrKeyNotFound) || outage.Is(err) {
		t.Fatalf("FindKey of a missing key: %v (marked %v)", err, outage.Is(err))
	}
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.Sign(nil, testDigest[:5], cryptoSHA256); err == nil || outage.Is(err) {
		t.Fatalf("Sign of a short digest: %v (marked %v)", err, outage.Is(err))
	}
	if _, err := tok.GenerateKey(ctx, "ec", ECP256); !errors.Is(err, ErrKeyExists) || outage.Is(err) {
		t.Fatalf("GenerateKey of an existing label: %v (marked %v)", err, outage.Is(err))
	}
}

// TestUnavailableSessionWait: when every session stays busy past the
// caller's deadline the error is marked (and still a deadline); a caller
// that cancels is not answered "try again later".
func TestUnavailableSessionWait(t *testing.T) {
	tok := newTestToken(t, Config{PoolSize: 2})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	for range tok.pool.size() {
		if err := tok.pool.enter(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for range tok.pool.size() {
			tok.pool.leave(nil)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = sg.SignContext(ctx, testDigest[:], cryptoSHA256)
	if !outage.Is(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sign with every session busy past the deadline: %v (marked %v)", err, outage.Is(err))
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := sg.SignContext(cctx, testDigest[:], cryptoSHA256); !errors.Is(err, context.Canceled) || outage.Is(err) {
		t.Fatalf("Sign cancelled by the caller: %v (marked %v)", err, outage.Is(err))
	}
}

// TestUnavailableTokenGone takes the token away behind the Token's back
// (its files moved out of SoftHSM's token folder and the library restarted,
// as when a network HSM drops the token): signing fails marked, with
// ErrTokenNotFound still in the chain. When the token comes back the same
// Signer signs again without a new Open.
func TestUnavailableTokenGone(t *testing.T) {
	tokenDir := softhsmTokenDir(t)
	before := dirNames(t, tokenDir)
	tok := newTestToken(t, Config{})
	var mine string
	for n := range dirNames(t, tokenDir) {
		if !before[n] {
			mine = n
		}
	}
	if mine == "" {
		t.Fatal("cannot tell the new token's folder")
	}
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)

	p := saboteur(t, tok)
	away := filepath.Join(filepath.Dir(tokenDir), "away-"+mine)
	tok.rw.Lock() // between operations, as in TestRecoveryUnderLoad
	if err := os.Rename(filepath.Join(tokenDir, mine), away); err != nil {
		tok.rw.Unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(away, filepath.Join(tokenDir, mine)) })
	if err := p.Finalize(); err != nil {
		tok.rw.Unlock()
		t.Fatal(err)
	}
	tok.rw.Unlock()

	for i := range 2 {
		_, err = sg.Sign(nil, testDigest[:], cryptoSHA256)
		if !outage.Is(err) || !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("Sign #%d with the token gone: %v (marked %v)", i, err, outage.Is(err))
		}
	}
	if err := tok.Ping(ctx); !outage.Is(err) {
		t.Fatalf("Ping with the token gone: %v (marked %v)", err, outage.Is(err))
	}

	// The token comes back (SoftHSM reads its folder when it starts).
	if err := os.Rename(away, filepath.Join(tokenDir, mine)); err != nil {
		t.Fatal(err)
	}
	tok.rw.Lock()
	err = p.Finalize()
	tok.rw.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)
}

// softhsmTokenDir is the token folder of the SoftHSM configuration this
// process uses.
func softhsmTokenDir(t *testing.T) string {
	t.Helper()
	testenv.PKCS11Module(t)
	body, err := os.ReadFile(os.Getenv("SOFTHSM2_CONF"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "directories.tokendir" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no directories.tokendir in SOFTHSM2_CONF")
	return ""
}

func dirNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name()] = true
	}
	return names
}
