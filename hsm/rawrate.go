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
	var (
		total    atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
		stop     atomic.Bool
	)
	start := time.Now()
	deadline := start.Add(d)
	for _, h := range sessions {
		wg.Go(func() {
			n := int64(0)
			for !stop.Load() {
				if err := t.p.SignInit(h, mech, obj); err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				if _, err := t.p.Sign(h, input); err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				n++
				if n&7 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
					stop.Store(true)
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, fmt.Errorf("hsm: raw signing with key %q: %w", label, firstErr)
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
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
