package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRecoveryUnderLoad injects faults (sessions closed, user logged out)
// again and again while 16 goroutines sign. Every returned signature must
// verify: a stale session handle that the module reissues to a new session
// must never make a goroutine finish another's operation.
//
// Each fault is injected between operations (the test holds the Token's
// write lock meanwhile): SoftHSM itself is not safe against a session being
// closed by another thread in the middle of its C_Sign (it crashes), which
// no caller can prevent.
func TestRecoveryUnderLoad(t *testing.T) {
	reg := newRegistry()
	tok := newTestToken(t, Config{Registerer: reg, PoolSize: 8})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tok.GenerateKey(ctx, "ec2", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	p := saboteur(t, tok)
	var (
		stop             atomic.Bool
		wg               sync.WaitGroup
		signed, failures atomic.Int64
		done             [16]atomic.Int64 // operations ended, by goroutine
	)
	for i := range 16 {
		key := sg
		if i%2 == 1 {
			key = other
		}
		pub := key.Public().(*ecdsa.PublicKey)
		wg.Go(func() {
			for ; !stop.Load(); done[i].Add(1) {
				sig, err := key.Sign(nil, testDigest[:], crypto.SHA256)
				if err != nil {
					failures.Add(1)
					t.Logf("sign during faults: %v", err)
					continue
				}
				if !ecdsa.VerifyASN1(pub, testDigest[:], sig) {
					t.Errorf("a signature by %s does not verify with its key", key.Label())
					stop.Store(true)
				}
				signed.Add(1)
			}
		})
	}
	injected := 0
	for i := range 10 {
		// Let every goroutine make progress between faults: an operation
		// is retried after two recoveries at most, so one that straddled
		// three faults could fail legitimately.
		// Each goroutine ends two operations first, so the one it had
		// in flight at the last fault is over: on a loaded machine a
		// goroutine can lag while the others sign their 200.
		time.Sleep(30 * time.Millisecond)
		var base [16]int64
		for g := range done {
			base[g] = done[g].Load()
		}
		for base := signed.Load(); signed.Load() < base+200 && !stop.Load(); {
			time.Sleep(time.Millisecond)
		}
		for g := range done {
			for done[g].Load() < base[g]+2 && !stop.Load() {
				time.Sleep(time.Millisecond)
			}
		}
		tok.rw.Lock()
		faults[i%2].inject(t, p, tok.slot)
		tok.rw.Unlock()
		injected++
	}
	time.Sleep(30 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	recoveries := sumCounter(t, reg, "thiqa_hsm_recoveries_total")
	t.Logf("%d signatures, %d failures, %d faults injected, %v recoveries", signed.Load(), failures.Load(), injected, recoveries)
	if recoveries < float64(injected)/2 {
		t.Fatalf("only %v recoveries for %d faults", recoveries, injected)
	}
	if failures.Load() > 0 {
		t.Fatalf("%d signatures failed during faults", failures.Load())
	}
	mustSignVerify(t, sg)
}
