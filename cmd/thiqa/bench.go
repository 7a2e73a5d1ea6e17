package main

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
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/thiqa/thiqa/hsm"
)

// benchmarks lists the load generators of `thiqa bench`.
func benchmarks() []command {
	return []command{
		{"hsm", "raw signing rate of the token vs the signer (hsm --data DIR)", benchHSM},
		{"issue", "certificate issuance load on a running server (issue --data DIR --url U)", benchIssue},
		{"ocsp", "OCSP responder load (ocsp --data DIR --url U/ocsp)", benchOCSP},
		{"tsa", "RFC 3161 time-stamp load vs the raw HSM rate (tsa URL/tsa --data DIR)", benchTSA},
		{"login", "digital-ID logins (login --data DIR --url U)", benchLogin},
		{"seal", "PAdES e-seals per level (seal URL --data DIR [--server-pid P])", benchSeal},
		{"sign", "CSC signHash signatures (sign URL --data DIR [--server-pid P])", benchSign},
		{"verify", "validations of a signed PDF in process (verify --in F --trust PEM)", benchVerify},
	}
}

// benchNotes says, for `thiqa bench NAME -h`, how long each load generator
// runs with its defaults and what it leaves on the token and in the store
// (docs/benchmarks.md has the same table). None of them cleans up: run them
// on a scratch data folder, never on a production one.
var benchNotes = map[string]string{
	"hsm": "Runs about 50 s with the defaults (2 key types x 4 concurrency levels x 3 rounds x 1 s raw + 1 s signer).\n" +
		"Leaves one key per type on the token (pkcs11:…;object=bench-ec-p256, bench-rsa-2048; reused by later runs) and a key.generate audit record when it creates one.",
	"issue": "Runs about 10 s (two 2 s raw HSM measurements, then 2,100 requests at concurrency 8 at a few hundred per second).\n" +
		"Leaves every certificate it issues in the store (2,100 with the defaults, profile citizen-signing, subject keys generated in this process and thrown away) with their audit records; no key on the token.",
	"ocsp": "Runs about 12 s (--duration 10 s plus loading the certificates it asks about).\n" +
		"Leaves nothing: it only reads. With --prepare N it issues N citizen-signing certificates into the store (audited) and exits.",
	"tsa": "Runs about 20 s (raw HSM rates before and after, 2 s each twice, 1 s warm-up, 5 s full load, 5 s half load).\n" +
		"Leaves every time-stamp token's audit record and the TSA serials it used; no key, no certificate.",
	"login": "Runs about 30 s (issues 16 citizens, 2 s raw HSM rate, 1,050 logins at concurrency 4; each mobile-ID login hashes a PIN).\n" +
		"Leaves per run: 16 citizen-auth keys on the token with their certificates and mobile-ID enrolments, one registered portal (\"Benchmark portal\"), and the audit records of every login.",
	"seal": "Runs about 25 s (2 s raw HSM rates before and after, 5 s per level B-B, B-T, B-LT; --large adds one big seal).\n" +
		"Leaves per run: one organisation-seal key on the token (keyInHSM) with its certificate in the store, and an audit record for every seal.",
	"sign": "Runs about 25 s (prepares --sads SADs, 2 s raw HSM rates before and after, 5 s signHash, 5 s each of sign B-B and B-T).\n" +
		"Leaves per run: one citizen-signing key on the token (keyInHSM) with its certificate and PIN in the store, and an audit record for every signature.",
	"verify": "Runs --duration (5 s) per round in process (with --compare, 3 rounds per verifier); with --url, against a running server.\n" +
		"Leaves nothing: validation writes nothing (with --url, the server counts the requests in its metrics).",
}

// runBench dispatches the load generators.
func runBench(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(env.stderr)
		if len(args) == 0 {
			return withExit(2, errSilent)
		}
		return nil
	}
	for _, b := range benchmarks() {
		if b.name == args[0] {
			if note := benchNotes[b.name]; note != "" && slices.ContainsFunc(args[1:], isHelpFlag) {
				fmt.Fprintf(env.stderr, "thiqa bench %s: %s\n%s\n\n", b.name, b.summary, note)
			}
			return b.run(ctx, env, args[1:])
		}
	}
	benchUsage(env.stderr)
	return withExit(2, fmt.Errorf("unknown benchmark %q", args[0]))
}

// isHelpFlag reports whether arg asks for a command's help.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: thiqa bench <benchmark> [flags]\n\nbenchmarks:")
	for _, b := range benchmarks() {
		fmt.Fprintf(w, "  %-7s %s\n", b.name, b.summary)
	}
	fmt.Fprintln(w, "\nRun 'thiqa bench <benchmark> -h' for its flags, how long it runs and what it leaves on the token and in the store.")
	fmt.Fprintln(w, "Every benchmark except verify and ocsp adds keys, certificates or audit records: use a scratch data folder.")
}

// latencies collects per-operation durations from several goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// percentile returns the p-th percentile (0 < p ≤ 100).
func (l *latencies) percentile(p float64) time.Duration {
	if len(l.all) == 0 {
		return 0
	}
	s := slices.Clone(l.all)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// benchHSM measures signatures per second through Thiqa's crypto.Signer and
// the raw PKCS#11 rate (own session per goroutine, C_SignInit+C_Sign) in the
// same run, for each key type and concurrency.
func benchHSM(ctx context.Context, env *cliEnv, args []string) error {
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
		return withExit(2, errors.New("--rounds and --duration must be positive"))
	}
	levels, err := parseInts(*gs)
	if err != nil {
		return withExit(2, fmt.Errorf("--goroutines: %w", err))
	}
	var types []hsm.KeyType
	for _, a := range strings.Split(*algs, ",") {
		kt, err := hsm.ParseKeyType(strings.TrimSpace(a))
		if err != nil {
			return withExit(2, fmt.Errorf("--alg: %w", err))
		}
		types = append(types, kt)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	cfg.HSM.PoolSize = max(cfg.HSM.PoolSize, slices.Max(levels))
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	tok, log := p.token, p.audit

	fmt.Fprintf(env.stdout, "thiqa bench hsm: %s, GOMAXPROCS=%d, %d alternating rounds of %s per figure (medians)\n", cfg.HSM.Module, runtime.GOMAXPROCS(0), *rounds, *d)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key\tgoroutines\traw/s\tsigner/s\tratio\tp50\tp99\t")
	for _, kt := range types {
		uri := fmt.Sprintf("pkcs11:token=%s;object=bench-%s", cfg.HSM.TokenLabel, kt)
		key, generated, err := ensureKey(ctx, cfg, tok, uri, kt)
		if err != nil {
			return err
		}
		if generated {
			if err := auditKeyGenerated(ctx, log, key); err != nil {
				return err
			}
		}
		for _, g := range levels {
			// Alternate raw and signer rounds and take medians, so that a
			// noisy machine hits both sides alike.
			var raws, rates []float64
			lat := &latencies{}
			for range *rounds {
				raw, err := hsm.RawSignRate(ctx, tok, key.Label(), g, *d)
				if err != nil {
					return fmt.Errorf("raw PKCS#11 rate: %w", err)
				}
				rate, l, err := signerRate(ctx, key, g, *d)
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

// parseInts reads a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// median returns the median of xs (xs is reordered).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
