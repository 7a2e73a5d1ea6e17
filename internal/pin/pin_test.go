package pin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func testParams() Params {
	p := DefaultParams()
	p.MemoryKiB = 64 // fast for tests; the format records it
	p.Time = 1
	return p
}

func newManager(t *testing.T) (*Manager, *MemoryStore) {
	t.Helper()
	s := NewMemoryStore()
	m, err := New(s, testParams())
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestSetCheckLockout(t *testing.T) {
	ctx := context.Background()
	m, s := newManager(t)
	if err := m.Check(ctx, "IDC1", "482916"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("check before set: %v", err)
	}
	if err := m.Set(ctx, "IDC1", "123"); !errors.Is(err, ErrPolicy) {
		t.Fatalf("short PIN: %v", err)
	}
	if err := m.Set(ctx, "IDC1", "482916"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, "IDC1", "583920"); !errors.Is(err, ErrAlreadySet) {
		t.Fatalf("second set: %v", err)
	}
	if strings.Contains(s.m["IDC1"].Hash, "482916") || !strings.HasPrefix(s.m["IDC1"].Hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("stored hash %q", s.m["IDC1"].Hash)
	}
	if err := m.Check(ctx, "IDC1", "482916"); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	// Four wrong, then right: the count resets.
	for i := 0; i < 4; i++ {
		var we *WrongError
		if err := m.Check(ctx, "IDC1", "000000"); !errors.As(err, &we) || we.Remaining != 4-i {
			t.Fatalf("wrong try %d: %v", i, err)
		}
	}
	if err := m.Check(ctx, "IDC1", "482916"); err != nil {
		t.Fatalf("right PIN after four wrong: %v", err)
	}
	// Five wrong lock it; then even the right PIN is refused.
	for i := 0; i < 5; i++ {
		err := m.Check(ctx, "IDC1", "000000")
		if !errors.Is(err, ErrWrong) {
			t.Fatalf("wrong try %d: %v", i, err)
		}
		if (i == 4) != errors.Is(err, ErrLocked) {
			t.Fatalf("try %d: locked=%v", i, errors.Is(err, ErrLocked))
		}
	}
	if err := m.Check(ctx, "IDC1", "482916"); !errors.Is(err, ErrLocked) {
		t.Fatalf("right PIN when locked: %v", err)
	}
	if err := m.Check(ctx, "IDC2", "482916"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("other subject: %v", err)
	}
}

func TestConcurrentGuessesBounded(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	if err := m.Set(ctx, "s", "correct-pin"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.Check(ctx, "s", "guess-000")
			if errors.Is(err, ErrWrong) {
				mu.Lock()
				wrong++
				mu.Unlock()
			} else if !errors.Is(err, ErrLocked) {
				t.Errorf("unexpected %v", err)
			}
		}()
	}
	wg.Wait()
	if wrong != 5 {
		t.Fatalf("%d guesses were evaluated, want exactly 5", wrong)
	}
}

func TestConcurrentRightPINsDoNotLock(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	if err := m.Set(ctx, "s", "correct-pin"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Check(ctx, "s", "correct-pin"); err != nil {
				t.Errorf("right PIN: %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestVerifyRejectsBadEncodings(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	h, err := m.Hash(ctx, "abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Verify(ctx, h, "abcdef"); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, _ := m.Verify(ctx, h, "abcdeg"); ok {
		t.Fatal("wrong PIN verified")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=64,t=1,p=1$$"} {
		if _, err := m.Verify(ctx, bad, "abcdef"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestErrorsNeverContainPIN(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	secret := "s3cr3t-PIN-value"
	_ = m.Set(ctx, "x", secret)
	for _, err := range []error{m.Check(ctx, "x", secret+"!"), m.Set(ctx, "x", secret), m.Set(ctx, "y", "12")} {
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("error reveals PIN: %v", err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decode(s)
		if err == nil && (d.memory > maxMemoryKiB || d.time > maxTime || len(d.salt) < 8) {
			t.Fatalf("accepted out-of-range %q", s)
		}
	})
}
