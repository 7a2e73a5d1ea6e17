package hsm

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// Benchmarks of the signing path against the raw PKCS#11 ceiling.
//
//	scripts/testenv.sh go test -run XXX -bench '^BenchmarkSign$' -benchtime 1s ./hsm/
//	scripts/testenv.sh go test -run XXX -bench '^BenchmarkSignerVsRaw$' ./hsm/
//
// Both build their token with PoolSize 8, so the Signer may hold one session
// per goroutine like raw at every measured concurrency.
//
// raw: g goroutines, each with its own session, loop C_SignInit + C_Sign over
// a fixed input. signer: g goroutines call (*Signer).Sign with a SHA-256
// digest, through the pool, metrics, handle cache and DER encoding.

var benchConcurrency = []int{1, 2, 4, 8}

type benchKey struct {
	name string
	kt   KeyType
}

var benchKeys = []benchKey{{"P256", ECP256}, {"RSA2048", RSA2048}}

func benchSetup(b *testing.B) (*Token, map[string]*Signer) {
	b.Helper()
	// One session per goroutine at every measured concurrency, like raw.
	tok := newTestToken(b, Config{Registerer: newRegistry(), PoolSize: 8})
	signers := make(map[string]*Signer)
	for _, k := range benchKeys {
		sg, err := tok.GenerateKey(context.Background(), k.name, k.kt)
		if err != nil {
			b.Fatal(err)
		}
		signers[k.name] = sg
	}
	return tok, signers
}

func BenchmarkSign(b *testing.B) {
	tok, signers := benchSetup(b)
	digest := sha256.Sum256([]byte("benchmark document"))
	for _, k := range benchKeys {
		sg := signers[k.name]
		for _, g := range benchConcurrency {
			b.Run(fmt.Sprintf("%s/raw/g=%d", k.name, g), func(b *testing.B) {
				mech, input := sg.rawInput()
				obj := sg.obj.Load().h
				sessions := openRawSessions(b, tok, g)
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				runWorkers(b, g, func(i int) error {
					h := sessions[i]
					for next.Add(1) <= int64(b.N) {
						if err := tok.p.SignInit(h, mech, obj); err != nil {
							return err
						}
						if _, err := tok.p.Sign(h, input); err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
			b.Run(fmt.Sprintf("%s/signer/g=%d", k.name, g), func(b *testing.B) {
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				runWorkers(b, g, func(int) error {
					for next.Add(1) <= int64(b.N) {
						if _, err := sg.Sign(nil, digest[:], crypto.SHA256); err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
		}
	}
}

// BenchmarkSignerVsRaw measures, in the same run, raw signing (own session
// per goroutine, C_SignInit + C_Sign, as RawSignRate does) and signing
// through the Signer, for each key and concurrency, in short alternating
// slices driven by the same loop. It reports:
//
//	signer/raw      median of the per-round throughput ratios (robust
//	                against bursts of other work on a shared machine)
//	raw/s, signer/s mean throughputs
//	cpu-raw/signer  process CPU time per raw signature over CPU time per
//	                Signer signature: the Signer's own cost, insensitive to
//	                how much of the machine other processes take
//
// Each sub-benchmark runs once (about 5 s).
func BenchmarkSignerVsRaw(b *testing.B) {
	tok, signers := benchSetup(b)
	const (
		rounds = 16
		slice  = 150 * time.Millisecond
	)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("benchmark document"))
	for _, k := range benchKeys {
		sg := signers[k.name]
		mech, input := sg.rawInput()
		obj := sg.obj.Load().h
		for _, g := range benchConcurrency {
			b.Run(fmt.Sprintf("%s/g=%d", k.name, g), func(b *testing.B) {
				sessions := openRawSessions(b, tok, g)
				raw := func(i int) error {
					if err := tok.p.SignInit(sessions[i], mech, obj); err != nil {
						return err
					}
					_, err := tok.p.Sign(sessions[i], input)
					return err
				}
				viaSigner := func(int) error {
					_, err := sg.Sign(nil, digest[:], crypto.SHA256)
					return err
				}
				ops := [2]func(int) error{raw, viaSigner}
				var rate, cpu [2]float64 // summed rates; CPU seconds per op, summed
				ratios := make([]float64, 0, rounds)
				for r := range rounds {
					var rr [2]float64
					for i := range 2 {
						j := (i + r) % 2 // alternate which goes first
						c0 := cpuTime()
						n, el, err := timedLoop(ctx, g, slice, ops[j])
						c1 := cpuTime()
						if err != nil {
							b.Fatal(err)
						}
						rr[j] = float64(n) / el.Seconds()
						cpu[j] += (c1 - c0).Seconds() / float64(n)
					}
					rate[0] += rr[0]
					rate[1] += rr[1]
					ratios = append(ratios, rr[1]/rr[0])
				}
				slices.Sort(ratios)
				b.ReportMetric(rate[0]/rounds, "raw/s")
				b.ReportMetric(rate[1]/rounds, "signer/s")
				b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "signer/raw")
				b.ReportMetric(cpu[0]/cpu[1], "cpu-raw/signer")
			})
		}
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openRawSessions(b *testing.B, tok *Token, n int) []pkcs11.SessionHandle {
	b.Helper()
	hs := make([]pkcs11.SessionHandle, n)
	for i := range hs {
		h, err := tok.p.OpenSession(tok.slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			b.Fatal(err)
		}
		hs[i] = h
	}
	b.Cleanup(func() {
		for _, h := range hs {
			_ = tok.p.CloseSession(h)
		}
	})
	return hs
}

// runWorkers runs exactly g goroutines and fails b on the first error.
func runWorkers(b *testing.B, g int, work func(i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for i := range g {
		wg.Go(func() {
			if err := work(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkSessionCopy compares raw signing with the token object and with
// a session copy of it (sessioncopy.go), on one goroutine:
//
//	scripts/testenv.sh go test -run XXX -bench '^BenchmarkSessionCopy$' -benchtime 2s ./hsm/
func BenchmarkSessionCopy(b *testing.B) {
	tok := newTestToken(b, Config{Registerer: newRegistry(), PoolSize: 2})
	for _, kt := range []KeyType{ECP256, ECP384} {
		sg, err := tok.GenerateKey(context.Background(), "copy-"+kt.String(), kt)
		if err != nil {
			b.Fatal(err)
		}
		mech, input := sg.rawInput()
		h := openRawSessions(b, tok, 1)[0]
		copied, err := tok.copyToSession(h, sg.obj.Load().h)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			obj  pkcs11.ObjectHandle
		}{{"token-object", sg.obj.Load().h}, {"session-copy", copied}} {
			b.Run(kt.String()+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					if err := tok.p.SignInit(h, mech, c.obj); err != nil {
						b.Fatal(err)
					}
					if _, err := tok.p.Sign(h, input); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
		}
	}
}
