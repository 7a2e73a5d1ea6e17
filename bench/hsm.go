package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// HSM measures signatures per second through Thiqa's crypto.Signer and the
// raw PKCS#11 rate (own session per goroutine, C_SignInit+C_Sign) in the
// same run, for each key type and concurrency (`thiqa bench hsm`).
func HSM(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench hsm", env)
	dir := fs.String("data", "", "data folder (required)")
	algs := fs.String("alg", "ec-p256,rsa-2048", "key types to measure, comma-separated")
	gs := fs.String("goroutines", "1,2,4,8", "concurrency levels, comma-separated")
	d := fs.Duration("duration", time.Second, "measuring time of one round")
	rounds := fs.Int("rounds", 3, "alternating raw/signer rounds per figure (medians are reported)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rounds < 1 || *d <= 0 {
		return usage(errors.New("--rounds and --duration must be positive"))
	}
	levels, err := parseInts(*gs)
	if err != nil {
		return usage(fmt.Errorf("--goroutines: %w", err))
	}
	var types []string
	for _, a := range strings.Split(*algs, ",") {
		kt, err := deps.KeyType(strings.TrimSpace(a))
		if err != nil {
			return usage(fmt.Errorf("--alg: %w", err))
		}
		types = append(types, kt)
	}
	folder, err := deps.Folder(*dir)
	if err != nil {
		return err
	}
	p, err := folder.OpenPlatform(ctx, slices.Max(levels))
	if err != nil {
		return err
	}
	defer p.Close()

	fmt.Fprintf(env.stdout, "thiqa bench hsm: %s, GOMAXPROCS=%d, %d alternating rounds of %s per figure (medians)\n", folder.HSMModule, runtime.GOMAXPROCS(0), *rounds, *d)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key\tgoroutines\traw/s\tsigner/s\tratio\tp50\tp99\t")
	for _, kt := range types {
		key, err := p.BenchKey(ctx, kt)
		if err != nil {
			return err
		}
		for _, g := range levels {
			// Alternate raw and signer rounds and take medians, so that a
			// noisy machine hits both sides alike.
			var raws, rates []float64
			lat := &latencies{}
			for range *rounds {
				raw, err := p.RawSignRate(ctx, key.Label, g, *d)
				if err != nil {
					return fmt.Errorf("raw PKCS#11 rate: %w", err)
				}
				rate, l, err := signerRate(ctx, key.Signer, g, *d)
				if err != nil {
					return err
				}
				raws, rates = append(raws, raw), append(rates, rate)
				lat.add(l.all)
			}
			raw, rate := median(raws), median(rates)
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%s\t%s\t\n", kt, g, raw, rate, rate/raw,
				lat.percentile(50).Round(time.Microsecond), lat.percentile(99).Round(time.Microsecond))
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "memory: heap in use %.1f MiB, obtained from the OS %.1f MiB\n", float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	return nil
}

// signerRate signs SHA-256 digests through the crypto.Signer from g
// goroutines for d and returns signatures per second and their latencies.
func signerRate(ctx context.Context, key crypto.Signer, g int, d time.Duration) (float64, *latencies, error) {
	digest := sha256.Sum256([]byte("thiqa bench hsm"))
	lat := &latencies{}
	var wg sync.WaitGroup
	errs := make(chan error, g)
	start := time.Now()
	deadline := start.Add(d)
	var total int64
	var mu sync.Mutex
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					errs <- fmt.Errorf("signing through the crypto.Signer: %w", err)
					return
				}
				local = append(local, time.Since(t0))
			}
			lat.add(local)
			mu.Lock()
			total += int64(len(local))
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, nil, err
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	return float64(total) / elapsed.Seconds(), lat, nil
}
