package hsm

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// Benchmarks of the signing path against the raw PKCS#11 ceiling.
//
//	scripts/testenv.sh go test -run XXX -bench 'BenchmarkSign/' -benchtime 1s ./hsm/
//	scripts/testenv.sh go test -run XXX -bench BenchmarkSignerVsRaw ./hsm/
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
	tok := newTestToken(b, Config{Registerer: newRegistry()})
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

// BenchmarkSignerVsRaw measures, in the same run and alternating, the raw
// rate (RawSignRate) and the Signer rate for each key and concurrency, and
// reports signer/raw. Each sub-benchmark runs once (about 4 s).
func BenchmarkSignerVsRaw(b *testing.B) {
	tok, signers := benchSetup(b)
	const (
		rounds = 8
		slice  = 250 * time.Millisecond
	)
	ctx := context.Background()
	for _, k := range benchKeys {
		sg := signers[k.name]
		for _, g := range benchConcurrency {
			b.Run(fmt.Sprintf("%s/g=%d", k.name, g), func(b *testing.B) {
				var raw, signer float64
				for r := range rounds {
					// Alternate which goes first so drift hits both alike.
					measure := []func() (float64, error){
						func() (float64, error) { return RawSignRate(ctx, tok, k.name, g, slice) },
						func() (float64, error) { return signerRate(sg, g, slice) },
					}
					if r%2 == 1 {
						measure[0], measure[1] = measure[1], measure[0]
					}
					var rates [2]float64
					for i, m := range measure {
						v, err := m()
						if err != nil {
							b.Fatal(err)
						}
						rates[i] = v
					}
					if r%2 == 1 {
						rates[0], rates[1] = rates[1], rates[0]
					}
					raw += rates[0]
					signer += rates[1]
				}
				b.ReportMetric(raw/rounds, "raw/s")
				b.ReportMetric(signer/rounds, "signer/s")
				b.ReportMetric(signer/raw, "signer/raw")
			})
		}
	}
}

// signerRate is RawSignRate's counterpart through (*Signer).Sign.
func signerRate(sg *Signer, goroutines int, d time.Duration) (float64, error) {
	digest := sha256.Sum256([]byte("benchmark document"))
	var (
		total atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	start := time.Now()
	deadline := start.Add(d)
	for range goroutines {
		wg.Go(func() {
			n := int64(0)
			for !stop.Load() {
				if _, err := sg.Sign(nil, digest[:], crypto.SHA256); err != nil {
					errMu.Lock()
					first = err
					errMu.Unlock()
					stop.Store(true)
					break
				}
				n++
				if n&7 == 0 && time.Now().After(deadline) {
					stop.Store(true)
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), first
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
