package hsm

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
)

// saboteur is a second handle on the same module: dlopen returns the same
// library instance, so what it does happens behind the Token's back.
func saboteur(t *testing.T, tok *Token) *pkcs11.Ctx {
	t.Helper()
	p := pkcs11.New(tok.module)
	if p == nil {
		t.Fatal("saboteur: cannot load the module")
	}
	if err := p.Initialize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatalf("saboteur: Initialize: %v", err)
	}
	t.Cleanup(p.Destroy)
	return p
}

type fault struct {
	name    string
	reasons []string // recovery reasons this fault may surface as
	inject  func(t *testing.T, p *pkcs11.Ctx, slot uint)
}

var faults = []fault{
	{"sessions-closed", []string{reasonSession}, func(t *testing.T, p *pkcs11.Ctx, slot uint) {
		if err := p.CloseAllSessions(slot); err != nil {
			t.Fatalf("C_CloseAllSessions: %v", err)
		}
	}},
	{"logged-out", []string{reasonNotLoggedIn, reasonHandleInvalid}, func(t *testing.T, p *pkcs11.Ctx, slot uint) {
		s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Logout(s); err != nil {
			t.Fatalf("C_Logout: %v", err)
		}
		_ = p.CloseSession(s)
	}},
	{"finalized-reinitialized", []string{reasonSession, reasonNotLoggedIn, reasonHandleInvalid}, func(t *testing.T, p *pkcs11.Ctx, slot uint) {
		if err := p.Finalize(); err != nil {
			t.Fatalf("C_Finalize: %v", err)
		}
		if err := p.Initialize(); err != nil {
			t.Fatalf("C_Initialize: %v", err)
		}
	}},
	{"finalized", []string{reasonNotInitialized}, func(t *testing.T, p *pkcs11.Ctx, slot uint) {
		if err := p.Finalize(); err != nil {
			t.Fatalf("C_Finalize: %v", err)
		}
	}},
}

// TestRecovery proves a Signer keeps working after each fault, for EC and
// RSA keys, and that the fault really hit it (a recovery was counted).
func TestRecovery(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			reg := newRegistry()
			var logs testenv.SyncBuffer
			tok := newTestToken(t, Config{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			ctx := context.Background()
			ec, err := tok.GenerateKey(ctx, "ec", ECP256)
			if err != nil {
				t.Fatal(err)
			}
			rsaKey, err := tok.GenerateKey(ctx, "rsa", RSA2048)
			if err != nil {
				t.Fatal(err)
			}
			// Warm the pool: several idle sessions to go stale.
			signConcurrently(t, ec, 4, 8)
			mustSignVerify(t, rsaKey)

			f.inject(t, saboteur(t, tok), tok.slot)

			mustSignVerify(t, ec)
			mustSignVerify(t, rsaKey)
			signConcurrently(t, ec, 8, 10)
			if err := tok.Ping(ctx); err != nil {
				t.Fatalf("Ping after recovery: %v", err)
			}
			if _, err := tok.FindKey(ctx, "rsa"); err != nil {
				t.Fatalf("FindKey after recovery: %v", err)
			}
			total := sumCounter(t, reg, "thiqa_hsm_recoveries_total")
			var expected float64
			for _, r := range f.reasons {
				expected += testutil.ToFloat64(tok.m.recoveries.WithLabelValues(r))
			}
			if total < 1 || expected != total {
				t.Fatalf("recoveries: %v in all, %v with reasons %v: the fault did not reach the signer as expected", total, expected, f.reasons)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "reason=") {
				t.Fatalf("recovery not logged at Warn with a reason:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), testUserPIN) {
				t.Fatal("the PIN reached the log")
			}
			t.Logf("recoveries: %v", total)
		})
	}
}

// TestRecoveryConcurrentOnce: many goroutines hit the same fault at once;
// the token recovers once and every signature succeeds.
func TestRecoveryConcurrentOnce(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			reg := newRegistry()
			tok := newTestToken(t, Config{Registerer: reg, PoolSize: 16})
			ctx := context.Background()
			sg, err := tok.GenerateKey(ctx, "ec", ECP256)
			if err != nil {
				t.Fatal(err)
			}
			signConcurrently(t, sg, 16, 4) // 16 idle sessions now
			f.inject(t, saboteur(t, tok), tok.slot)
			signConcurrently(t, sg, 16, 4)
			if got := sumCounter(t, reg, "thiqa_hsm_recoveries_total"); got != 1 {
				t.Fatalf("%v recoveries for one fault hit by 16 goroutines, want 1", got)
			}
		})
	}
}

func signConcurrently(t *testing.T, sg *Signer, goroutines, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Sign: %v", err)
	}
}

func sumCounter(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestRecoveryPINChangedBehindOurBack: when the PIN is changed and the user
// logged out, recovery fails with ErrPINIncorrect once and then never tries
// the old PIN again (a real HSM would lock the PIN after a few tries).
func TestRecoveryPINChangedBehindOurBack(t *testing.T) {
	var logs testenv.SyncBuffer
	tok := newTestToken(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	p := saboteur(t, tok)
	s, err := p.OpenSession(tok.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetPIN(s, testUserPIN, "changed-pin-1111"); err != nil {
		t.Fatalf("C_SetPIN: %v", err)
	}
	if err := p.Logout(s); err != nil {
		t.Fatal(err)
	}
	_ = p.CloseSession(s)
	for i := range 3 {
		_, err := sg.Sign(nil, testDigest[:], cryptoSHA256)
		if !errors.Is(err, ErrPINIncorrect) {
			t.Fatalf("Sign #%d after the PIN changed: %v, want ErrPINIncorrect", i, err)
		}
		if outage.Is(err) {
			t.Fatalf("Sign #%d after the PIN changed: %v is marked as an outage; a retry cannot cure a refused PIN", i, err)
		}
	}
	if err := tok.Ping(ctx); !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("Ping: %v", err)
	}
	if n := strings.Count(logs.String(), "refused the PIN"); n != 1 {
		t.Fatalf("PIN tried %d times during recoveries, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), testUserPIN) || strings.Contains(logs.String(), "changed-pin-1111") {
		t.Fatal("a PIN reached the log")
	}
}

// TestPingRecovers: /readyz's Ping is the first call after each fault and
// brings the token back by itself.
func TestPingRecovers(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			tok := newTestToken(t, Config{})
			ctx := context.Background()
			sg, err := tok.GenerateKey(ctx, "ec", ECP256)
			if err != nil {
				t.Fatal(err)
			}
			f.inject(t, saboteur(t, tok), tok.slot)
			if err := tok.Ping(ctx); err != nil {
				t.Fatalf("Ping after fault: %v", err)
			}
			before := tok.gen
			mustSignVerify(t, sg)
			if tok.gen != before {
				t.Fatalf("signing after Ping needed another recovery (generation %d -> %d)", before, tok.gen)
			}
		})
	}
}

// TestKeyHandleCached: signing does not look the key up again while the
// generation is unchanged.
func TestKeyHandleCached(t *testing.T) {
	tok := newTestToken(t, Config{})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	kh := sg.obj.Load()
	for range 5 {
		mustSignVerify(t, sg)
	}
	if sg.obj.Load() != kh {
		t.Fatal("the key handle was looked up again without a recovery")
	}
}
