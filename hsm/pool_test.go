package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConcurrentSigningPoolBound(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{PoolSize: 4, Registerer: reg})
	ctx := context.Background()
	ec, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := tok.GenerateKey(ctx, "rsa", RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	tok.pool.peak.Store(0)
	openedBefore := tok.opened.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		sg := ec
		if i%4 == 0 {
			sg = rsaKey
		}
		wg.Go(func() {
			for range 20 {
				sig, err := sg.Sign(nil, testDigest[:], crypto.SHA256)
				if err != nil {
					errs <- err
					return
				}
				if !verifyAny(sg, sig) {
					errs <- errors.New("signature does not verify")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if peak := tok.pool.peak.Load(); peak > 4 || peak < 2 {
		t.Fatalf("peak sessions in use %d, want 2..4", peak)
	}
	if opened := tok.opened.Load(); opened > 4 {
		t.Fatalf("%d sessions opened in all (%d during the run), want at most the pool size 4", opened, opened-openedBefore)
	}
	if tok.pool.waits.Load() == 0 || testutil.ToFloat64(tok.m.waits) == 0 {
		t.Fatal("32 goroutines on 4 sessions never waited")
	}
	if got := testutil.ToFloat64(tok.m.inUse); got != 0 {
		t.Fatalf("sessions in use after the run: %v", got)
	}
	if got := testutil.ToFloat64(tok.m.signatures.WithLabelValues("ec", resultOK)); got != 24*20 {
		t.Fatalf("ok signatures by ec: %v, want %d", got, 24*20)
	}
}

func verifyAny(sg *Signer, sig []byte) bool {
	switch pub := sg.Public().(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, testDigest[:], sig)
	default:
		return rsaVerify(pub, sig)
	}
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	tok := newTestToken(t, Config{PoolSize: 2})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	// Take every slot.
	for range 2 {
		if err := tok.pool.enter(context.Background(), tok.m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = sg.SignContext(ctx, testDigest[:], crypto.SHA256)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SignContext on an exhausted pool: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
	// A cancelled wait does not leak a slot: give ours back and sign.
	tok.pool.leave(tok.m)
	tok.pool.leave(tok.m)
	mustSignVerify(t, sg)
	if n := tok.pool.inUse.Load(); n != 0 {
		t.Fatalf("%d slots still taken", n)
	}
}

func TestVerifyAfterSign(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{VerifyAfterSign: true, Registerer: reg})
	ctx := context.Background()
	for _, kt := range []KeyType{ECP256, RSA2048} {
		sg, err := tok.GenerateKey(ctx, kt.String(), kt)
		if err != nil {
			t.Fatal(err)
		}
		checkSignatures(t, sg)
		// A signer whose idea of its public key is wrong: the check must
		// catch the mismatch, refuse the signature and count it.
		other, err := tok.GenerateKey(ctx, kt.String()+"-other", kt)
		if err != nil {
			t.Fatal(err)
		}
		sg.pub = other.pub
		sig, err := sg.Sign(nil, testDigest[:], crypto.SHA256)
		if err == nil || sig != nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("%s: mismatched public key: sig %x, err %v", kt, sig, err)
		}
		if got := testutil.ToFloat64(tok.m.signatures.WithLabelValues(kt.String(), resultVerifyFailed)); got != 1 {
			t.Fatalf("%s: verify_failed = %v, want 1", kt, got)
		}
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{Registerer: reg})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "citizen-ca", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)
	mustSignVerify(t, sg)
	if _, err := sg.Sign(nil, []byte("short"), crypto.SHA256); err == nil {
		t.Fatal("accepted a short digest")
	}
	if got := testutil.ToFloat64(tok.m.signatures.WithLabelValues("citizen-ca", resultOK)); got != 2 {
		t.Fatalf("ok = %v", got)
	}
	if got := testutil.ToFloat64(tok.m.signatures.WithLabelValues("citizen-ca", resultError)); got != 1 {
		t.Fatalf("error = %v", got)
	}
	for _, name := range []string{"thiqa_hsm_signatures_total", "thiqa_hsm_sign_duration_seconds",
		"thiqa_hsm_pool_sessions_in_use", "thiqa_hsm_pool_waits_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Fatalf("metric %s missing from the registry (%d, %v)", name, n, err)
		}
	}
	// A second Token on the same registry shares the collectors.
	tok2 := newTestToken(t, Config{Registerer: reg})
	if tok2.m.signatures != tok.m.signatures {
		t.Fatal("second Token did not share the registered collectors")
	}
	// Key labels mapped to a bounded metric label.
	tok4 := newTestToken(t, Config{Registerer: reg, KeyMetricLabel: func(string) string { return "citizen" }})
	for _, l := range []string{"c-1", "c-2"} {
		sg, err := tok4.GenerateKey(ctx, l, ECP256)
		if err != nil {
			t.Fatal(err)
		}
		mustSignVerify(t, sg)
	}
	if got := testutil.ToFloat64(tok.m.signatures.WithLabelValues("citizen", resultOK)); got != 2 {
		t.Fatalf("citizen ok = %v, want 2", got)
	}
	// No registerer: no metrics, signing still works.
	tok3 := newTestToken(t, Config{})
	sg3, err := tok3.GenerateKey(ctx, "k", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg3)
}

func TestRawSignRate(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	for _, kt := range []KeyType{ECP256, RSA2048} {
		if _, err := tok.GenerateKey(ctx, kt.String(), kt); err != nil {
			t.Fatal(err)
		}
		rate, err := RawSignRate(ctx, tok, kt.String(), 2, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if rate <= 1 {
			t.Fatalf("%s raw rate %.0f/s is implausibly low", kt, rate)
		}
		t.Logf("%s raw rate with 2 goroutines: %.0f/s", kt, rate)
	}
	if _, err := RawSignRate(ctx, tok, "absent", 1, time.Millisecond); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RawSignRate(absent) = %v", err)
	}
}
