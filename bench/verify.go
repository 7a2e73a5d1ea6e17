package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// Verify is `thiqa bench verify --in FILE --trust PEM [--tsl LIST
// --tsl-signer PEM] [--concurrency N]
// [--duration D] [--at T] [--compare pdfsign [--rounds R]]`: in-process
// validations per second of one document (read into memory once; no
// network: revocation data must be embedded, as in B-LT), with p50/p99
// latencies and the process CPU per validation. --compare pdfsign
// alternates rounds of Thiqa's verifier and github.com/digitorus/pdfsign's
// on the same bytes in the same process and reports the medians and their
// ratio. --url U measures POST U/api/v1/verify instead. With
// --once it validates the file once, streaming it from disk, and prints
// the process's peak resident memory (VmHWM) — the figure for a large
// document. With --tsl, anchors and qualified status come from the trusted
// list as in `thiqa verify --tsl`, so every validation includes the list
// lookup.
func Verify(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench verify", env)
	in := fs.String("in", "", "signed PDF to validate (required)")
	var trust fileList
	fs.Var(&trust, "trust", "PEM file of trusted roots (repeatable; in process --trust or --tsl is required)")
	var lists, listSigners fileList
	fs.Var(&lists, "tsl", "ETSI trusted list FILE: its qualified services are anchors and decide `qualified` (repeatable)")
	fs.Var(&listSigners, "tsl-signer", "PEM file of a certificate allowed to sign the --tsl lists (repeatable)")
	conc := fs.Int("concurrency", runtime.GOMAXPROCS(0), "concurrent validations")
	d := fs.Duration("duration", 5*time.Second, "measuring time (of each round)")
	at := fs.String("at", "", "validation time (RFC 3339; default now)")
	once := fs.Bool("once", false, "validate once from disk and report peak memory (VmHWM)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measuring run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the measuring run to this file")
	compare := fs.String("compare", "", `also measure another verifier on the same file: "pdfsign"`)
	rounds := fs.Int("rounds", 0, "alternating rounds per verifier with --compare (medians; default 3)")
	url := fs.String("url", "", "measure POST URL/api/v1/verify of a running server instead of the verifier in process")
	pid := fs.Int("server-pid", 0, "with --url: process ID of the server, for its CPU time per validation")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || (len(trust) == 0 && len(lists) == 0 && *url == "") {
		return usage(errors.New("--in and --trust or --tsl (or --url) are required"))
	}
	if len(lists) > 0 && len(listSigners) == 0 {
		return usage(errors.New("--tsl needs --tsl-signer: a trusted list is used only after its signature verifies"))
	}
	if *conc < 1 || *d <= 0 || *rounds < 0 {
		return usage(errors.New("--concurrency, --duration and --rounds must be positive"))
	}
	if *compare != "" && *compare != "pdfsign" {
		return usage(fmt.Errorf("--compare: %q is not a verifier this benchmark knows (pdfsign)", *compare))
	}
	if *url != "" {
		return verifyHTTP(ctx, env, *url, *in, *conc, *d, *pid)
	}
	var when time.Time
	if *at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return usage(fmt.Errorf("--at: %w", err))
		}
	}
	// Offline: the benchmark never touches the network.
	v, err := offlineVerifier(ctx, deps, trust, lists, listSigners, when)
	if err != nil {
		return err
	}
	if *once {
		return verifyOnce(ctx, env, v, *in)
	}
	doc, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	first, err := v.VerifyPDF(ctx, bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return err
	}
	if first.Indication != report.TotalPassed {
		fmt.Fprintf(env.stderr, "warning: the document verifies %s %s, not TOTAL-PASSED\n", first.Indication, first.SubIndication)
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if pf, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(pf, 0)
				pf.Close()
			}
		}()
	}
	level := ""
	if len(first.Signatures) > 0 {
		level = first.Signatures[len(first.Signatures)-1].Level
	}
	fmt.Fprintf(env.stdout, "document      %s, %.1f KiB, %d signature(s), %s %s\n", *in, float64(len(doc))/1024, len(first.Signatures), first.Indication, level)
	if *compare != "" {
		n := *rounds
		if n == 0 {
			n = 3
		}
		return compareVerifiers(ctx, env, v, doc, first, *conc, *d, n)
	}
	var failures atomic.Int64
	r, err := measureVerify(ctx, *conc, *d, thiqaVerifyOp(v, doc, first, &failures))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "validations   %d in %s with %d goroutines (GOMAXPROCS %d): %.1f/s, %d differing\n",
		r.n, r.elapsed.Round(time.Millisecond), *conc, runtime.GOMAXPROCS(0), r.rate, failures.Load())
	fmt.Fprintf(env.stdout, "latency       p50 %s  p99 %s\n", r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
	if r.cpu > 0 {
		fmt.Fprintf(env.stdout, "cpu           %s per validation (process user+system time) -> %.0f/s per idle core\n",
			r.cpu.Round(10*time.Microsecond), float64(time.Second)/float64(r.cpu))
	}
	return nil
}

// thiqaVerifyOp is one in-process validation of doc; a verdict that
// differs from the first one is counted, not fatal.
func thiqaVerifyOp(v *verify.Verifier, doc []byte, first *report.Report, differing *atomic.Int64) func(context.Context) error {
	return func(ctx context.Context) error {
		rep, err := v.VerifyPDF(ctx, bytes.NewReader(doc), int64(len(doc)))
		if err != nil {
			return err
		}
		if rep.Indication != first.Indication {
			differing.Add(1)
		}
		return nil
	}
}

// verifyOnce validates a file once, streaming it from disk, and prints the
// process's peak resident memory.
func verifyOnce(ctx context.Context, env *env, v *verify.Verifier, in string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := v.VerifyPDF(ctx, f, st.Size())
	if err != nil {
		return err
	}
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(env.stdout, "document      %s, %.1f MiB, %d signature(s)\n", in, float64(st.Size())/(1<<20), len(rep.Signatures))
	fmt.Fprintf(env.stdout, "verdict       %s %s in %s\n", rep.Indication, rep.SubIndication, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(env.stdout, "peak memory   %.1f MiB (VmHWM of the process); Go heap obtained from the OS %.1f MiB, total allocated %.1f MiB\n",
		float64(hwm)/1024, float64(ms.HeapSys)/(1<<20), float64(ms.TotalAlloc)/(1<<20))
	return nil
}

// verifyRound is one measured round.
type verifyRound struct {
	n        int
	elapsed  time.Duration
	rate     float64
	p50, p99 time.Duration
	cpu      time.Duration // process CPU time per validation
}

// measureVerify runs op from conc goroutines for d.
func measureVerify(ctx context.Context, conc int, d time.Duration, op func(context.Context) error) (verifyRound, error) {
	lat := &latencies{}
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(ctx); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					break
				}
				mine = append(mine, time.Since(t0))
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	r := verifyRound{n: len(lat.all), elapsed: time.Since(start), p50: lat.percentile(50), p99: lat.percentile(99)}
	r.rate = float64(r.n) / r.elapsed.Seconds()
	if cpu := cpuTime() - cpu0; r.n > 0 && cpu > 0 {
		r.cpu = cpu / time.Duration(r.n)
	}
	return r, firstErr
}

// medianRound returns the medians of each figure over rounds.
func medianRound(rs []verifyRound) verifyRound {
	med := func(f func(verifyRound) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return verifyRound{
		rate: med(func(r verifyRound) float64 { return r.rate }),
		p50:  time.Duration(med(func(r verifyRound) float64 { return float64(r.p50) })),
		p99:  time.Duration(med(func(r verifyRound) float64 { return float64(r.p99) })),
		cpu:  time.Duration(med(func(r verifyRound) float64 { return float64(r.cpu) })),
	}
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM).
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("parsing VmHWM %q: %w", rest, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// offlineVerifier is the verifier `thiqa verify` builds, offline: it
// trusts the certificates of the PEM files trust and the qualified
// services of the trusted lists (deps.TrustedLists), validates at at
// (zero: now) and takes documents of up to 4 GiB.
func offlineVerifier(ctx context.Context, deps Deps, trust, lists, listSigners []string, at time.Time) (*verify.Verifier, error) {
	o := verify.Options{At: at, MaxFileSize: 4 << 30}
	if len(lists) > 0 {
		tl, err := deps.TrustedLists(ctx, lists, listSigners)
		if err != nil {
			return nil, err
		}
		o.TrustedLists = tl
	}
	for _, p := range trust {
		certs, err := verify.ReadPEMFile(p)
		if err != nil {
			return nil, err
		}
		o.TrustAnchors = append(o.TrustAnchors, certs...)
	}
	return verify.New(o), nil
}
