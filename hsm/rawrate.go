package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// RawSignRate measures the raw PKCS#11 signing ceiling for the key
// labelled label: goroutines goroutines each open their own session and
// loop C_SignInit + C_Sign over a fixed input (a 32-byte digest for ECDSA,
// a SHA-256 DigestInfo for RSA PKCS#1 v1.5) for d. It returns signatures
// per second. Service benchmarks report their throughput as a ratio to it.
func RawSignRate(ctx context.Context, t *Token, label string, goroutines int, d time.Duration) (float64, error) {
	return rawSignRate(ctx, t, label, goroutines, d, false)
}

// RawSignRateSessionCopy is RawSignRate signing with a session copy of the
// key in each goroutine's session (C_CopyObject, CKA_TOKEN false), the way a
// Signer signs after UseSessionCopies: the raw ceiling for such a key.
func RawSignRateSessionCopy(ctx context.Context, t *Token, label string, goroutines int, d time.Duration) (float64, error) {
	return rawSignRate(ctx, t, label, goroutines, d, true)
}

func rawSignRate(ctx context.Context, t *Token, label string, goroutines int, d time.Duration, copied bool) (float64, error) {
	if goroutines < 1 {
		return 0, errors.New("hsm: RawSignRate needs at least one goroutine")
	}
	sg, err := t.FindKey(ctx, label)
	if err != nil {
		return 0, err
	}
	t.rw.RLock()
	defer t.rw.RUnlock()
	if t.closed {
		return 0, ErrClosed
	}
	gen := t.gen
	mech, input := sg.rawInput()
	sessions := make([]pkcs11.SessionHandle, goroutines)
	for i := range sessions {
		h, err := t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			for _, o := range sessions[:i] {
				_ = t.p.CloseSession(o)
			}
			return 0, fmt.Errorf("hsm: opening a session for the raw rate: %w", err)
		}
		sessions[i] = h
	}
	defer func() {
		for _, h := range sessions {
			_ = t.p.CloseSession(h)
		}
	}()
	obj, err := sg.handle(&session{h: sessions[0], gen: gen})
	if err != nil {
		return 0, err
	}
	objs := make([]pkcs11.ObjectHandle, goroutines)
	for i := range objs {
		objs[i] = obj
		if copied {
			// Destroyed with the session when the measurement ends.
			if objs[i], err = t.copyToSession(sessions[i], obj); err != nil {
				return 0, fmt.Errorf("hsm: copying key %q into a session for the raw rate: %w", label, err)
			}
		}
	}
	n, elapsed, err := timedLoop(ctx, goroutines, d, func(i int) error {
		if err := t.p.SignInit(sessions[i], mech, objs[i]); err != nil {
			return err
		}
		_, err := t.p.Sign(sessions[i], input)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("hsm: raw signing with key %q: %w", label, err)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// timedLoop runs op from exactly g goroutines (op gets the goroutine's
// index) until d has passed or ctx is done, and returns the operations
// completed and the time taken. The first error stops every goroutine.
func timedLoop(ctx context.Context, g int, d time.Duration, op func(i int) error) (int64, time.Duration, error) {
	var (
		total atomic.Int64
		stop  atomic.Bool
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range g {
		wg.Go(func() {
			n := int64(0)
			for !stop.Load() {
				if err := op(i); err != nil {
					once.Do(func() { first = err })
					stop.Store(true)
					break
				}
				n++
				if time.Now().After(deadline) || ctx.Err() != nil {
					stop.Store(true)
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	return total.Load(), time.Since(start), first
}

// rawInput is the fixed mechanism and input RawSignRate signs.
func (sg *Signer) rawInput() ([]*pkcs11.Mechanism, []byte) {
	digest := make([]byte, 32)
	for i := range digest {
		digest[i] = byte(i*7 + 1)
	}
	if !sg.kt.IsRSA() {
		return sg.mechECDSA, digest
	}
	return sg.mechPKCS1, append(append([]byte(nil), digestInfoPrefix[1]...), digest...)
}
