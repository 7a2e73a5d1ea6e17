package pin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPolicyRefusesTrivialPINs(t *testing.T) {
	m, _ := newManager(t)
	for _, bad := range []string{"123456", "111111", "654321", "abcdef", "FEDCBA", "0123456789", "12345", strings.Repeat("7", 65), "\xff\xfe\xfd\xfc\xfb\xfa"} {
		if err := m.CheckPolicy(bad); !errors.Is(err, ErrPolicy) {
			t.Errorf("%q: %v, want ErrPolicy", bad, err)
		} else if strings.Contains(err.Error(), bad) && len(bad) > 0 {
			t.Errorf("the policy error reveals the PIN: %v", err)
		}
	}
	for _, good := range []string{"482916", "135790", "246801", "112233", "correct horse"} {
		if err := m.CheckPolicy(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	p := testParams()
	p.AllowTrivial = true
	if err := p.CheckPolicy("123456"); err != nil {
		t.Errorf("AllowTrivial: %v", err)
	}
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	m, s := newManager(t)
	if err := m.Set(ctx, "c", "482916"); err != nil {
		t.Fatal(err)
	}
	if err := m.Change(ctx, "c", "482916", "123456"); !errors.Is(err, ErrPolicy) {
		t.Fatalf("trivial new PIN: %v", err)
	}
	if err := m.Change(ctx, "c", "482916", "482916"); !errors.Is(err, ErrPolicy) {
		t.Fatalf("same PIN: %v", err)
	}
	if s.m["c"].Failures != 0 {
		t.Fatalf("a policy refusal counted a try: %+v", s.m["c"])
	}
	var we *WrongError
	if err := m.Change(ctx, "c", "000001", "583920"); !errors.As(err, &we) || we.Remaining != 4 {
		t.Fatalf("wrong old PIN: %v", err)
	}
	if err := m.Change(ctx, "c", "482916", "583920"); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx, "c", "482916"); !errors.Is(err, ErrWrong) {
		t.Fatalf("old PIN after change: %v", err)
	}
	if err := m.Check(ctx, "c", "583920"); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	if err := m.Change(ctx, "nobody", "482916", "583920"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("unknown subject: %v", err)
	}
}

func TestResetAndActivate(t *testing.T) {
	ctx := context.Background()
	m, s := newManager(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	if _, err := m.Reset(ctx, "nobody"); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("reset of an unknown subject: %v", err)
	}
	if err := m.Set(ctx, "c", "482916"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		_ = m.Check(ctx, "c", "000001")
	}
	if err := m.Check(ctx, "c", "482916"); !errors.Is(err, ErrLocked) {
		t.Fatalf("not locked: %v", err)
	}
	a, err := m.Reset(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Code) != 14 || a.Code[4] != '-' || !a.Expires.Equal(now.Add(DefaultActivationLifetime)) {
		t.Fatalf("activation %+v", a)
	}
	// Reset clears the PIN: neither the old PIN nor a plain set works.
	if err := m.Check(ctx, "c", "482916"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("old PIN after reset: %v", err)
	}
	if err := m.Set(ctx, "c", "583920"); !errors.Is(err, ErrAlreadySet) {
		t.Fatalf("set without the code after a reset: %v", err)
	}
	if err := m.Activate(ctx, "c", a.Code, "123456"); !errors.Is(err, ErrPolicy) {
		t.Fatalf("trivial PIN: %v", err)
	}
	var wc *WrongCodeError
	if err := m.Activate(ctx, "c", "0000-0000-0000", "583920"); !errors.As(err, &wc) || wc.Remaining != 4 {
		t.Fatalf("wrong code: %v", err)
	}
	// The code as a person types it: lower case, spaces, O for 0.
	typed := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(a.Code, "-", " "), "0", "o"))
	if err := m.Activate(ctx, "c", typed, "583920"); err != nil {
		t.Fatalf("activate: %v", err)
	}
	if err := m.Check(ctx, "c", "583920"); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	if err := m.Activate(ctx, "c", a.Code, "613572"); !errors.Is(err, ErrNoActivation) {
		t.Fatalf("reused code: %v", err)
	}
	if len(s.pending) != 0 {
		t.Fatalf("activation kept after use: %v", s.pending)
	}

	// An expired code, then a voided one.
	a, _ = m.Reset(ctx, "c")
	now = now.Add(DefaultActivationLifetime)
	if err := m.Activate(ctx, "c", a.Code, "583920"); !errors.Is(err, ErrActivationExpired) {
		t.Fatalf("expired code: %v", err)
	}
	a, _ = m.Reset(ctx, "c")
	for i := 0; i < 5; i++ {
		err := m.Activate(ctx, "c", "0000-0000-0000", "583920")
		if !errors.Is(err, ErrWrongCode) || (i == 4) != errors.Is(err, ErrNoActivation) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if err := m.Activate(ctx, "c", a.Code, "583920"); !errors.Is(err, ErrNoActivation) {
		t.Fatalf("right code after it was voided: %v", err)
	}
	// A code activates only its own credential.
	s.Register("d")
	b, _ := m.Reset(ctx, "d")
	a, _ = m.Reset(ctx, "c")
	if err := m.Activate(ctx, "c", b.Code, "583920"); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("another credential's code: %v", err)
	}
	if err := m.Activate(ctx, "c", a.Code, "583920"); err != nil {
		t.Fatal(err)
	}
}

func TestActivationCodes(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c, err := newActivationCode()
		if err != nil {
			t.Fatal(err)
		}
		if seen[c] || normalizeCode(c) != c || strings.Trim(strings.ReplaceAll(c, "-", ""), codeAlphabet) != "" {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
	}
	if normalizeCode("é") != "" || normalizeCode("ab cd-il") != "ABCD-11" {
		t.Fatalf("normalize: %q %q", normalizeCode("é"), normalizeCode("ab cd-il"))
	}
}
